"""Errors raised by the engine: each names where, which field, what was expected and what came."""

from __future__ import annotations


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted Matcher was called before `fit` or `load`."""


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(str(value))} chars)"
    return text


class RecordError(ValueError):
    """One bad field in one input record."""

    def __init__(
        self,
        field: str,
        expected: str,
        got: object,
        *,
        source: str | None = None,
        record: int | None = None,
        shown: str | None = None,
    ) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        self.source = source
        self.record = record
        self.shown = _show(got) if shown is None else shown
        super().__init__(self._message())

    def located(self, source: str | None, record: int | None) -> RecordError:
        """The same error, placed in a file and at a record number."""
        return RecordError(
            self.field, self.expected, self.got, source=source, record=record, shown=self.shown
        )

    def _message(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.record is not None:
            where.append(f"record {self.record}")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{prefix}field {self.field!r}: expected {self.expected}, got {self.shown}"

    @property
    def zh(self) -> str:
        """The message in Chinese, for pages and the CLI (matcher.messages' catalogue)."""
        from matcher.messages import field_label, zh

        where = self.source or ""
        if self.record is not None:
            where += f" 第 {self.record} 条"
        prefix = f"{where.strip()}：" if where else ""
        expected = zh(self.expected) or self.expected
        return f"{prefix}{field_label(self.field)}应为{expected}，收到 {self.shown}"


class LoadError(ValueError):
    """A whole file could not be read (missing, unreadable, wrong encoding, unknown format)."""


class InvalidRecordsError(ValueError):
    """A load rejected because of one or more bad records."""

    def __init__(self, errors: list[RecordError]) -> None:
        self.errors = errors
        head = "\n".join(str(e) for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} invalid record(s):\n{head}{more}")

    @property
    def zh(self) -> str:
        head = "\n".join(e.zh for e in self.errors[:20])
        more = f"\n……另有 {len(self.errors) - 20} 条" if len(self.errors) > 20 else ""
        return f"{len(self.errors)} 条记录有误：\n{head}{more}"
