"""Rows → JSONL, CSV or XLSX file, written whole or not at all (temporary file, then rename)."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matcher.readers import FORMATS


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
                writer.writerow(titles)
                writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
        if suffix == ".xlsx":
            import openpyxl

            book = openpyxl.Workbook(write_only=True)
            sheet = book.create_sheet("duijie")
            sheet.append(titles)
            for row in rows:
                sheet.append([_cell(row.get(c)) for c in columns])
            book.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
