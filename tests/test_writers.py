import csv
import json
import os

import openpyxl
import pytest

from matcher.writers import write_rows

ROWS = [{"need_id": "n1", "score": 0.5, "reasons": ["同一网格", "类别一致"], "features": {"ring": 0.0}}]
COLUMNS = ("need_id", "score", "reasons", "features")


def test_write_rows_jsonl_keeps_structure(tmp_path):
    path = write_rows(tmp_path / "out.jsonl", ROWS, COLUMNS)
    assert json.loads(path.read_text(encoding="utf-8")) == ROWS[0]


def test_write_rows_csv_has_bom_and_joined_lists(tmp_path):
    path = write_rows(tmp_path / "out.csv", ROWS, COLUMNS)
    assert path.read_bytes().startswith("\ufeff".encode())
    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0]["reasons"] == "同一网格；类别一致"
    assert json.loads(rows[0]["features"]) == {"ring": 0.0}


def test_write_rows_xlsx(tmp_path):
    path = write_rows(tmp_path / "sub" / "out.xlsx", ROWS, COLUMNS)
    sheet = openpyxl.load_workbook(path).active
    assert [c.value for c in sheet[1]] == list(COLUMNS)
    assert sheet["A2"].value == "n1"


def test_write_rows_rejects_unknown_extension_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"out: expected a file ending in .jsonl, .csv, .xlsx, got 'out.txt'"):
        write_rows(tmp_path / "out.txt", ROWS, COLUMNS)
    assert os.listdir(tmp_path) == []


def test_write_rows_failure_leaves_old_file_whole(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n", encoding="utf-8")

    class Exploding(dict):
        def get(self, key, default=None):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_rows(path, [*ROWS, Exploding()], COLUMNS)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]
