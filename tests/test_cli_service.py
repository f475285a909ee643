from api.cli import main
from api.db import make_engine, migrate
from tests.api_helpers import database, service


def _empty(url: str) -> str:
    """A migrated, empty database: what `duijie serve` leaves behind on its first start."""
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def test_cli_keys_create_list_revoke(tmp_path, capsys):
    with database("sqlite", tmp_path) as url:
        with service(url) as svc:  # a key names grids of the grid list
            for grid in ("P1", "P2"):
                svc.call("POST", "/v1/grids", "admin", json={"id": grid})
        capsys.readouterr()
        assert main(["keys", "--database-url", url, "create", "--role", "staff", "--grids", "P1,P2"]) == 0
        printed = capsys.readouterr().out.strip().splitlines()
        key, key_id = printed[-1], printed[0].split()[2].rstrip(",")
        assert key.startswith("dj_") and len(key) > 40
        assert main(["keys", "--database-url", url, "list"]) == 0
        listing = capsys.readouterr().out
        assert "staff\tP1,P2\t-\tactive" in listing and key not in listing
        with service(url) as svc:
            ok = svc.client.get("/v1/suggestions", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        assert main(["keys", "--database-url", url, "revoke", key_id]) == 0
        with service(url) as svc:
            gone = svc.client.get("/v1/suggestions", headers={"Authorization": f"Bearer {key}"})
            assert gone.status_code == 401


def test_cli_keys_staff_without_grids_is_refused(tmp_path, capsys):
    with database("sqlite", tmp_path) as url:
        _empty(url)
        assert main(["keys", "--database-url", url, "create", "--role", "staff"]) == 2
        assert "grids: expected at least one grid id (or --streets) for a staff key" in capsys.readouterr().err


def test_cli_keys_revoke_unknown_id(tmp_path, capsys):
    with database("sqlite", tmp_path) as url:
        _empty(url)
        assert main(["keys", "--database-url", url, "revoke", "99"]) == 1
        assert "expected the id of an existing key, got 99" in capsys.readouterr().err


def test_cli_commands_refuse_a_missing_sqlite_file_instead_of_making_an_empty_one(tmp_path, capsys, monkeypatch):
    # Run in the wrong folder, the relative default URL named a new duijie.db there, whose keys then failed.
    monkeypatch.chdir(tmp_path)
    for argv in (["keys", "create", "--role", "admin"], ["keys", "list"], ["escalate"],
                 ["models", "list"], ["report", "--month", "2026-11", "--out", "r.xlsx"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "数据库文件不存在" in err and str(tmp_path / "duijie.db") in err, err
    assert not (tmp_path / "duijie.db").exists()
