"""The message catalogue: every refusal the parsers can say has its Chinese, and people get it."""

import ast
from pathlib import Path

import pytest

from matcher.errors import InvalidRecordsError, LoadError, RecordError
from matcher.messages import field_label, in_chinese, report_error, zh
from matcher.readers import load_list
from matcher.records import parse_need

ROOT = Path(__file__).resolve().parent.parent


def _expected_phrases() -> list[tuple[str, str]]:
    """(where, the 'expected' words) of every RecordError the engine and the service raise; a part computed
    at run time stands as '7'."""
    found = []
    for path in [*(ROOT / "matcher").glob("*.py"), *(ROOT / "api").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RecordError" and len(node.args) > 1:
                words = node.args[1]
                if isinstance(words, ast.Constant) and isinstance(words.value, str):
                    found.append((f"{path.name}:{node.lineno}", words.value))
                elif isinstance(words, ast.JoinedStr):
                    text = "".join(v.value if isinstance(v, ast.Constant) else "7" for v in words.values)
                    found.append((f"{path.name}:{node.lineno}", text))
    return found


def test_every_refusal_the_parsers_can_say_is_in_the_catalogue():
    phrases = _expected_phrases()
    assert len(phrases) > 25  # the scan found the parsers
    missing = [(where, text) for where, text in phrases if zh(text) is None]
    assert missing == []


def test_a_record_error_reads_in_chinese_with_its_place_field_and_value():
    with pytest.raises(RecordError) as caught:
        parse_need({"id": "n1", "title": "场地", "deadline": "下周"})
    assert caught.value.located("需求.csv", 3).zh == (
        "需求.csv 第 3 条：截止日期（deadline）应为日期，如 2026-12-31，收到 '下周'")
    assert str(caught.value).startswith("field 'deadline': expected an ISO date")  # English stays for clients


def test_parts_filled_in_at_run_time_come_through():
    assert zh("an integer >= 1") == "不小于 1 的整数"
    assert zh("a number from -90.0 to 90.0") == "-90.0 到 90.0 之间的数"
    assert zh("the id of a need in the needs list") == "需求清单中已有的编号".replace("需求", "need", 1)
    assert zh("no such words anywhere") is None
    assert field_label("need.title") == "需求·标题（need.title）" and field_label("zzz") == "zzz"


def test_whole_file_errors_and_many_bad_records_read_in_chinese(tmp_path):
    assert in_chinese(LoadError(f"{tmp_path}/x.csv: file not found")) == f"{tmp_path}/x.csv：文件不存在"
    path = tmp_path / "资源.csv"
    path.write_text("编号,标题,容量\nr1,会议室,很多\nr2,,1\n", encoding="utf-8")
    with pytest.raises(InvalidRecordsError) as caught:
        load_list(path, "resources")
    assert caught.value.zh.startswith("2 条记录有误：") and "容量（capacity）应为不小于 1 的整数" in caught.value.zh


def test_the_terminal_says_it_in_chinese_first(capsys):
    report_error(LoadError("/x.csv: file not found"))
    err = capsys.readouterr().err.splitlines()
    assert err == ["duijie: 错误：/x.csv：文件不存在", "duijie: error: /x.csv: file not found"]
