import csv
import json
import subprocess
import sys

import pytest

from matcher.cli import main
from tests.conftest import GRIDS, NEEDS, RESOURCES


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture()
def lists(tmp_path):
    return (_jsonl(tmp_path / "needs.jsonl", NEEDS), _jsonl(tmp_path / "resources.jsonl", RESOURCES),
            _jsonl(tmp_path / "grids.jsonl", GRIDS))


def test_cli_demo_end_to_end_writes_summary_and_pairs(tmp_path, capsys):
    out = tmp_path / "pairs.csv"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    for label in ("needs", "resources", "pairs made", "unmatched", "total score", "time taken", "best pairs"):
        assert label in printed
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert len({r["需求编号"] for r in rows}) == 320
    # Titles beside the ids, and Chinese column names and results for Excel.
    assert all(r["需求标题"] for r in rows) and any(r["资源标题"] for r in rows)
    # Every demo need was written with a resource that serves it; an unmatched one would carry its reason.
    assert "已配对" in {r["结果"] for r in rows} <= {"已配对", "未配对"}


def test_cli_match_top_k_jsonl(lists, tmp_path, capsys):
    needs, resources, grids = lists
    out = tmp_path / "top.jsonl"
    code = main(["match", "--needs", str(needs), "--resources", str(resources), "--grids", str(grids),
                 "--top-k", "2", "--out", str(out), "--quiet"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    care = [r for r in rows if r["need_id"] == "n-care"]
    assert [r["rank"] for r in care] == [1, 2] and care[0]["resource_id"] == "r-care"
    assert "suggestions" in capsys.readouterr().out


def test_cli_match_assign_xlsx(lists, tmp_path):
    needs, resources, _ = lists
    out = tmp_path / "pairs.xlsx"
    assert main(["match", "--needs", str(needs), "--resources", str(resources), "--assign", "--min-score", "0.2",
                 "--out", str(out), "--quiet"]) == 0
    assert out.stat().st_size > 0


def test_cli_bad_record_fails_and_writes_nothing(lists, tmp_path, capsys):
    needs, _, _ = lists
    bad = _jsonl(tmp_path / "bad.jsonl", [*RESOURCES, {"id": "r-zero", "title": "场地", "capacity": 0}])
    out = tmp_path / "pairs.csv"
    assert main(["match", "--needs", str(needs), "--resources", str(bad), "--out", str(out), "--quiet"]) == 1
    assert "bad.jsonl, record 7: field 'capacity': expected an integer >= 1, got 0" in capsys.readouterr().err
    assert not out.exists()


def test_cli_skip_invalid_reports_and_goes_on(lists, tmp_path, capsys):
    needs, _, _ = lists
    bad = _jsonl(tmp_path / "bad.jsonl", [*RESOURCES, {"id": "r-zero", "title": "场地", "capacity": 0}])
    assert main(["match", "--needs", str(needs), "--resources", str(bad), "--skip-invalid", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "skipped: " in captured.err and "records skipped" in captured.out


def test_cli_unknown_grid_is_rejected(lists, tmp_path, capsys):
    _, resources, grids = lists
    needs = _jsonl(tmp_path / "needs.jsonl", [{"id": "n", "title": "托育", "grid": "G404"}])
    assert main(["match", "--needs", str(needs), "--resources", str(resources), "--grids", str(grids)]) == 1
    assert "field 'grid': expected the id of a grid in the grid list, got 'G404'" in capsys.readouterr().err


def test_cli_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["match", "--needs", str(tmp_path / "no.jsonl"), "--resources", str(tmp_path / "no.csv")]) == 1
    assert "no.jsonl: file not found" in capsys.readouterr().err


def test_cli_rejects_min_score_out_of_range(lists, capsys):
    needs, resources, _ = lists
    assert main(["match", "--needs", str(needs), "--resources", str(resources), "--min-score", "2"]) == 2
    assert "--min-score: expected a number from 0 to 1, got 2.0" in capsys.readouterr().err


def test_cli_help_names_every_option():
    result = subprocess.run([sys.executable, "-m", "matcher.cli", "match", "--help"], capture_output=True, text=True,
                            check=True)
    for option in ("--needs", "--resources", "--grids", "--top-k", "--assign", "--min-score", "--out",
                   "--skip-invalid", "--sides", "--same-category"):
        assert option in result.stdout
