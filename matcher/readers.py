"""Files → checked records: JSONL, CSV or XLSX by extension, UTF-8 or GBK, every bad record named."""

from __future__ import annotations

import csv
import io
import itertools
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from charset_normalizer import from_bytes

from matcher.errors import InvalidRecordsError, LoadError, RecordError
from matcher.records import Grid, Need, Resource, headers_for, parse_grid, parse_need, parse_resource

FORMATS = (".jsonl", ".csv", ".xlsx")
# What a CSV cell that would start a formula begins with (see matcher.writers, which guards them).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# How far down a sheet its header row may be (below an export's title rows).
HEADER_SEARCH_ROWS = 10
# Columns holding ids, under any header: Excel stores an id typed as a number as a float.
ID_COLUMNS = frozenset(h for field in ("id", "grid", "parent", "need", "resource") for h in headers_for(field))
# Far above any real list; a file past this is a mistake (a log, a dump), not a list.
MAX_FILE_BYTES = 512 * 1024 * 1024
PARSERS: dict[str, Callable[[Any], Need | Resource | Grid]] = {
    "needs": parse_need, "resources": parse_resource, "grids": parse_grid,
}


class Loaded(NamedTuple):
    """Records that passed the checks, and the errors of those skipped (empty unless skipping)."""

    records: list
    skipped: list[RecordError]


# Encodings that Chinese office software exports besides UTF-8: GB18030 is a superset of GBK and
# GB2312; Big5 comes with traditional-script text.
FALLBACK_ENCODINGS = ("gb18030", "big5")


def decode(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM); else the GBK/GB18030 or Big5 reading that charset-normalizer finds likeliest."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as utf8_error:
        best = from_bytes(data, cp_isolation=list(FALLBACK_ENCODINGS)).best()
        if best is None:
            raise LoadError(
                f"{source}: expected UTF-8, GBK/GB18030 or Big5 text, got bytes that are none of these "
                f"(first bad UTF-8 byte at offset {utf8_error.start}); re-save the file as UTF-8"
            ) from None
        return str(best)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LoadError(
                f"{path}: expected a list file of at most {MAX_FILE_BYTES // 2**20} MB, got {size // 2**20} MB")
        return path.read_bytes()
    except FileNotFoundError:
        raise LoadError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LoadError(f"{path}: expected a file, got a directory") from None
    except PermissionError:
        raise LoadError(f"{path}: file cannot be read (permission denied)") from None


def lines(text: str) -> list[str]:
    """The file's lines: split at line feeds only, since pasted text inside a record may hold a form feed,
    NEL or U+2028, which str.splitlines would also cut at (the parsers clean them out of the text)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _jsonl_rows(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        try:
            # strict=False: a raw control character inside a string is pasted text, cleaned by the parsers.
            yield number, json.loads(line, strict=False)
        except json.JSONDecodeError as exc:
            yield number, RecordError("record", "one JSON object per line", line, shown=f"invalid JSON ({exc.msg})")


def _check_header(header: list[str], key: str, where: str = "") -> None:
    accepted = headers_for(key)
    if not any(name in accepted for name in header):
        raise LoadError(f"expected a header row with an {key!r} column ({' / '.join(accepted)}){where}, "
                        f"got {header!r}")


def csv_value(value: str) -> str:
    """A CSV cell as it was before export: the one apostrophe matcher.writers puts before a formula start."""
    if value.startswith("'") and value.lstrip("'").startswith(FORMULA_START):
        return value[1:]
    return value


def _csv_rows(text: str, key: str) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_header([csv_value(f).strip() for f in reader.fieldnames or []], key)
    for row in reader:
        if any((value or "").strip() for value in row.values() if isinstance(value, str)):
            yield reader.line_num, {csv_value(k or "").strip(): csv_value(v) if isinstance(v, str) else v
                                    for k, v in row.items() if k is not None}


def _xlsx_rows(data: bytes, key: str) -> Iterator[tuple[int, Any]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise LoadError(f"expected an Excel .xlsx workbook, got unreadable content ({exc})") from None
    rows = book.worksheets[0].iter_rows(values_only=True)
    accepted, first, header_row = headers_for(key), None, 0
    # The project's exports put title rows above the header (report, scope, period, made at, by whom):
    # the header is the first row, among the first few, that names the key column.
    for header_row, values in enumerate(itertools.islice(rows, HEADER_SEARCH_ROWS), start=1):  # noqa: B007
        header = [str(h).strip() if h is not None else "" for h in values]
        first = header if first is None else first
        if any(name in accepted for name in header):
            break
    else:
        header = first or []
    _check_header(header, key, " in the first sheet")
    for number, values in enumerate(rows, start=header_row + 1):
        if any(v is not None and str(v).strip() for v in values):
            record = {name: value for name, value in zip(header, values, strict=False) if name}
            # Excel stores ids typed as numbers as floats: 101 must stay "101", not "101.0".
            for name in ID_COLUMNS.intersection(record):
                if isinstance(record[name], float) and record[name].is_integer():
                    record[name] = int(record[name])
            yield number, record
    book.close()


def raw_rows(path: str | Path, *, key: str = "id") -> Iterator[tuple[int, Any]]:
    """(record number, raw mapping) for each record of a list file; a bad line yields its RecordError.

    `key` is the column a CSV or XLSX header must have: `id` in lists, `decision` in decision histories.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LoadError(f"{path}: expected a file ending in {', '.join(FORMATS)}, got {suffix or 'no extension'!r}")
    data = _read_bytes(path)
    try:
        if suffix == ".xlsx":
            yield from _xlsx_rows(data, key)
        elif suffix == ".csv":
            yield from _csv_rows(decode(data, str(path)), key)
        else:
            yield from _jsonl_rows(decode(data, str(path)))
    except LoadError as exc:
        message = str(exc)
        raise LoadError(message if message.startswith(str(path)) else f"{path}: {message}") from None


def load_list(path: str | Path, kind: str, *, skip_invalid: bool = False,
              grid_ids: set[str] | None = None) -> Loaded:
    """Read and check a needs, resources or grids file.

    Any bad record rejects the whole file unless `skip_invalid`, which drops and reports it.
    With `grid_ids`, a record naming a grid outside that set is bad.
    """
    if kind not in PARSERS:
        raise ValueError(f"kind: expected one of {', '.join(PARSERS)}, got {kind!r}")
    parse, source = PARSERS[kind], str(path)
    records, errors, seen = [], [], set()
    for number, raw in raw_rows(path):
        try:
            if isinstance(raw, RecordError):
                raise raw
            record = parse(raw)
            if record.id in seen:
                raise RecordError("id", f"an id unique in this {kind} list", record.id)
            if grid_ids is not None and getattr(record, "grid", "") and record.grid not in grid_ids:
                raise RecordError("grid", "the id of a grid in the grid list", record.grid)
        except RecordError as exc:
            errors.append(exc.located(source, number))
            continue
        seen.add(record.id)
        records.append(record)
    if errors and not skip_invalid:
        raise InvalidRecordsError(errors)
    return Loaded(records, errors)
