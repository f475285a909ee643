from api.cli import main
from tests.api_helpers import database, service


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
        assert main(["keys", "--database-url", url, "create", "--role", "staff"]) == 2
        assert "grids: expected at least one grid id (or --streets) for a staff key" in capsys.readouterr().err


def test_cli_keys_revoke_unknown_id(tmp_path, capsys):
    with database("sqlite", tmp_path) as url:
        assert main(["keys", "--database-url", url, "revoke", "99"]) == 1
        assert "expected the id of an existing key, got 99" in capsys.readouterr().err
