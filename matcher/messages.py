"""The message catalogue: the Chinese that people read (pages, the CLI, the API's `message` field).

The engine and the service say what went wrong in English words that clients, logs and tests match
on; this module finds their Chinese in data/i18n/zh.po (a gettext catalogue, read with Babel), where
each entry may hold {name} parts filled in at run time ("an integer >= {low}"). An English message
without an entry is shown as it is: never a blank.
"""

from __future__ import annotations

import argparse
import functools
import re
from typing import Any

from matcher.packaged import packaged

CATALOGUE = ("i18n", "zh.po")
_PART = re.compile(r"\{(\w+)\}")


@functools.cache
def _entries() -> dict[str, list[tuple[re.Pattern[str] | None, str, str]]]:
    """Per context: (pattern of the English with its parts, the English, the Chinese)."""
    from babel.messages.pofile import read_po

    with open(packaged("duijie_data", *CATALOGUE), "rb") as handle:
        catalogue = read_po(handle)
    out: dict[str, list[tuple[re.Pattern[str] | None, str, str]]] = {}
    for message in catalogue:
        if not message.id or not message.string or message.fuzzy:
            continue
        english, chinese = str(message.id), str(message.string)
        pattern = None
        if _PART.search(english):
            # The parts match lazily; the rest of the English must match exactly, start to end.
            pieces, seen, regex = _PART.split(english), set(), ""
            for i, piece in enumerate(pieces):
                if i % 2 == 0:
                    regex += re.escape(piece)
                else:  # a part named twice ("a {name} ... the {name}s list") is the same text both times
                    regex += f"(?P={piece})" if piece in seen else f"(?P<{piece}>.+?)"
                    seen.add(piece)
            pattern = re.compile(f"^{regex}$", re.DOTALL)
        out.setdefault(message.context or "", []).append((pattern, english, chinese))
    return out


def zh(text: str, context: str = "expected", **parts: Any) -> str | None:
    """The Chinese of an English message of this context, its parts carried over; None when not catalogued."""
    entries = _entries().get(context, [])
    for pattern, english, chinese in entries:
        if pattern is None and english == text:
            return chinese.format(**parts) if parts else chinese
    for pattern, _, chinese in entries:
        found = pattern.match(text) if pattern is not None else None
        if found:
            return chinese.format(**found.groupdict())
    return None


def field_label(name: str) -> str:
    """A field's Chinese name, with its code beside it (staff may meet the code in a file's header):
    标题（title）; a dotted name (need.title) labels each part."""
    parts = [zh(part, "field") or part for part in str(name).split(".")]
    return f"{'·'.join(parts)}（{name}）" if parts != str(name).split(".") else str(name)


def in_chinese(exc: BaseException) -> str:
    """What a person reads of an error: its Chinese when it has one, else its English words."""
    chinese = getattr(exc, "zh", None)
    if chinese:
        return str(chinese)
    text = str(exc)
    return zh(text, "load") or text


def report_error(exc: BaseException, prefix: str = "duijie") -> None:
    """An error on the terminal: Chinese first; the English words after it when they differ (for a log
    search or a bug report)."""
    import sys

    chinese, english = in_chinese(exc), str(exc)
    print(f"{prefix}: 错误：{chinese}", file=sys.stderr)
    if chinese != english:
        print(f"{prefix}: error: {english}", file=sys.stderr)


class ChineseHelpFormatter(argparse.HelpFormatter):
    """argparse's help, its words through the catalogue (msgctxt "cli"): `duijie --help` in Chinese."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        return zh(text, "cli") or text if text else text

    def add_text(self, text: str | None) -> None:
        super().add_text(zh(text, "cli") or text if text else text)

    def start_section(self, heading: str | None) -> None:
        super().start_section(zh(heading, "cli") or heading if heading else heading)

    def add_usage(self, usage, actions, groups, prefix=None) -> None:
        super().add_usage(usage, actions, groups, prefix if prefix is not None else zh("usage: ", "cli"))


class ChineseArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose help and usage errors are in Chinese (the English after, as for errors)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", ChineseHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        import sys

        self.print_usage(sys.stderr)
        chinese = zh(message, "argparse")
        lines = [f"{self.prog}: 错误：{chinese or message}"] + ([f"{self.prog}: error: {message}"] if chinese else [])
        self.exit(2, "\n".join(lines) + "\n")
