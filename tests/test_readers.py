import json

import openpyxl
import pytest

from matcher.errors import InvalidRecordsError, LoadError
from matcher.readers import decode, load_list, raw_rows


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_load_list_reads_jsonl(tmp_path):
    path = _jsonl(tmp_path / "needs.jsonl", [{"id": "n1", "title": "托育"}, {"id": "n2", "title": "停车"}])
    assert [n.id for n in load_list(path, "needs").records] == ["n1", "n2"]


def test_load_list_reads_csv_with_bom_and_blank_cells(tmp_path):
    path = tmp_path / "resources.csv"
    path.write_text("\ufeffid,title,capacity,lat,lon\nr1,社区食堂,3,,\nr2,停车位,,30.5,104.0\n", encoding="utf-8")
    resources = load_list(path, "resources").records
    assert [(r.id, r.capacity, r.lat) for r in resources] == [("r1", 3, None), ("r2", 1, 30.5)]


def test_load_list_reads_xlsx_with_numeric_ids(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "title", "grid"])
    sheet.append([101, "法律咨询", 7])
    sheet.append([None, None, None])
    path = tmp_path / "needs.xlsx"
    book.save(path)
    (need,) = load_list(path, "needs").records
    assert (need.id, need.grid) == ("101", "7")


def test_load_list_reads_gbk_csv(tmp_path):
    path = tmp_path / "needs.csv"
    path.write_bytes("id,title\nn1,社区需要托育服务，职工子女放学后无人照看\n".encode("gbk"))
    assert load_list(path, "needs").records[0].title == "社区需要托育服务，职工子女放学后无人照看"


def test_decode_reads_big5_traditional_text():
    text = "社區需要托育服務，職工子女放學後無人照看"
    assert decode(text.encode("big5"), "x") == text


def test_load_list_rejects_undecodable_bytes(tmp_path):
    path = tmp_path / "needs.jsonl"
    path.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(LoadError, match=r"needs\.jsonl: expected UTF-8, GBK/GB18030 or Big5 text"):
        load_list(path, "needs")


def test_load_list_bad_record_rejects_whole_file_and_names_line_and_field(tmp_path):
    path = _jsonl(tmp_path / "resources.jsonl",
                  [{"id": "r1", "title": "食堂"}, {"id": "r2", "title": "停车", "capacity": 0}])
    with pytest.raises(InvalidRecordsError, match=r"resources.jsonl, record 2: field 'capacity': expected an integer "
                                                  r">= 1, got 0"):
        load_list(path, "resources")


def test_load_list_skip_invalid_keeps_good_records_and_reports_bad(tmp_path):
    path = _jsonl(tmp_path / "resources.jsonl",
                  [{"id": "r1", "title": "食堂"}, {"id": "r2", "title": "停车", "capacity": 0},
                   {"id": "r3", "title": "！"}])
    loaded = load_list(path, "resources", skip_invalid=True)
    assert [r.id for r in loaded.records] == ["r1"]
    assert [(e.record, e.field) for e in loaded.skipped] == [(2, "capacity"), (3, "title")]


def test_load_list_rejects_duplicate_ids(tmp_path):
    path = _jsonl(tmp_path / "needs.jsonl", [{"id": "n1", "title": "托育"}, {"id": "n1", "title": "停车"}])
    with pytest.raises(InvalidRecordsError, match="record 2: field 'id': expected an id unique in this needs list, "
                                                  "got 'n1'"):
        load_list(path, "needs")


def test_load_list_rejects_unknown_grid_ids(tmp_path):
    path = _jsonl(tmp_path / "needs.jsonl", [{"id": "n1", "title": "托育", "grid": "G404"}])
    with pytest.raises(InvalidRecordsError, match="field 'grid': expected the id of a grid in the grid list, "
                                                  "got 'G404'"):
        load_list(path, "needs", grid_ids={"G1"})


def test_load_list_rejects_invalid_json_line(tmp_path):
    path = tmp_path / "needs.jsonl"
    path.write_text('{"id": "n1", "title": "托育"}\n{"id": "n2", title}\n', encoding="utf-8")
    with pytest.raises(InvalidRecordsError, match="record 2: field 'record': expected one JSON object per line, "
                                                  "got invalid JSON"):
        load_list(path, "needs")


def test_load_list_rejects_ten_megabyte_title(tmp_path):
    path = _jsonl(tmp_path / "needs.jsonl", [{"id": "n1", "title": "托" * 10 * 1024 * 1024}])
    with pytest.raises(InvalidRecordsError, match="field 'title': expected at most 500 characters, got 10485760"):
        load_list(path, "needs")


def test_load_list_missing_file(tmp_path):
    with pytest.raises(LoadError, match=r"missing\.jsonl: file not found"):
        load_list(tmp_path / "missing.jsonl", "needs")


def test_load_list_directory_is_not_a_file(tmp_path):
    folder = tmp_path / "lists.jsonl"
    folder.mkdir()
    with pytest.raises(LoadError, match="expected a file, got a directory"):
        load_list(folder, "needs")


def test_load_list_unknown_extension(tmp_path):
    path = tmp_path / "needs.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(LoadError, match=r"expected a file ending in .jsonl, .csv, .xlsx, got '.txt'"):
        load_list(path, "needs")


def test_load_list_corrupt_xlsx(tmp_path):
    path = tmp_path / "needs.xlsx"
    path.write_bytes(b"not a zip file")
    with pytest.raises(LoadError, match=r"needs\.xlsx: expected an Excel \.xlsx workbook, got unreadable content"):
        load_list(path, "needs")


def test_load_list_csv_without_id_column(tmp_path):
    path = tmp_path / "needs.csv"
    path.write_text("name,title\nx,托育\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"needs\.csv: expected a header row with an 'id' column"):
        load_list(path, "needs")


def test_load_list_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="kind: expected one of needs, resources, grids, got 'projects'"):
        load_list(tmp_path / "x.jsonl", "projects")


def test_raw_rows_skips_blank_lines_and_keeps_line_numbers(tmp_path):
    path = tmp_path / "needs.jsonl"
    path.write_text('\n{"id": "a"}\n\n{"id": "b"}\n', encoding="utf-8")
    assert [n for n, _ in raw_rows(path)] == [2, 4]
