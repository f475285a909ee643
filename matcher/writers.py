"""Rows → JSONL, CSV or XLSX file, written whole or not at all (temporary file, then rename); and the one
rule every spreadsheet the project writes follows, that no cell from user text can run as a formula.

XLSX: every text value is written as a string cell (openpyxl would make "=..." a formula). CSV has no cell
types, so a text cell that Excel or LibreOffice would read as a formula (starting with = + - @, a tab or a
carriage return) gets a leading apostrophe, as OWASP's CSV-injection advice says; the readers take exactly
one such apostrophe off again, so every export re-imports unchanged.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matcher.readers import FORMATS, FORMULA_START


def csv_text(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text that would start a formula gets one more apostrophe."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_START):
        return "'" + value
    return value


def xlsx_cells(sheet: Any, values: Sequence[Any]) -> list[Any]:
    """Cells for one row of an openpyxl sheet (either mode): text always a string cell, never a formula."""
    from openpyxl.cell import WriteOnlyCell

    cells = []
    for value in values:
        cell = WriteOnlyCell(sheet, value)
        if isinstance(value, str):
            cell.data_type = "s"
        cells.append(cell)
    return cells


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "；".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_rows(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str],
               headers: Mapping[str, str] | None = None) -> Path:
    """Write rows with the given columns; the format follows the file extension.

    `headers` names the columns of a CSV or XLSX file (for people: Chinese); JSONL keeps the keys.
    """
    titles = [(headers or {}).get(c, c) for c in columns]
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"out: expected a file ending in {', '.join(FORMATS)}, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            if suffix == ".jsonl":
                for row in rows:
                    out.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False) + "\n")
            elif suffix == ".csv":
                # The BOM lets Excel, which staff open CSVs with, read the Chinese text right.
                out.write("\ufeff")
                writer = csv.writer(out)
                writer.writerow([csv_text(t) for t in titles])
                writer.writerows([csv_text(_cell(row.get(c))) for c in columns] for row in rows)
        if suffix == ".xlsx":
            import openpyxl

            book = openpyxl.Workbook(write_only=True)
            sheet = book.create_sheet("duijie")
            sheet.append(xlsx_cells(sheet, titles))
            for row in rows:
                sheet.append(xlsx_cells(sheet, [_cell(row.get(c)) for c in columns]))
            book.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
