"""Named accounts: created and reset by admins (CLI and page), signed in with a password, throttled."""

import re

import pytest

from api.cli import main
from api.demo import print_demo_sign_in


def _csrf(client, path: str = "/review/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _sign_in(client, username: str, password: str):
    return client.post("/review/login", data={"username": username, "password": password, "csrf": _csrf(client)},
                       follow_redirects=False)


@pytest.fixture
def svc(pages_svc):
    return pages_svc


def _created(capsys, argv) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_an_account_made_on_the_command_line_signs_in_and_a_reset_signs_it_out(svc, capsys):
    password = _created(capsys, ["accounts", "--database-url", svc.url, "create", "张三", "--role", "staff",
                                 "--grids", "P1"])
    assert len(password) == 12
    with svc.app.state.sessions() as session:  # stored as an Argon2id hash, never as typed
        stored = session.scalar(__import__("sqlalchemy").text("SELECT password_hash FROM accounts"))
    assert stored.startswith("$argon2id$") and password not in stored
    assert _sign_in(svc.client, "张三", "wrong-password").status_code == 401
    assert _sign_in(svc.client, "张三", password).status_code == 303
    assert svc.client.get("/review").status_code == 200  # the queue of P1
    assert main(["accounts", "--database-url", svc.url, "list"]) == 0
    assert "张三\t网格员\tP1\t有效" in capsys.readouterr().out
    fresh = _created(capsys, ["accounts", "--database-url", svc.url, "reset", "张三"])
    assert fresh != password
    assert svc.client.get("/review", follow_redirects=False).status_code == 303  # the old session ended
    assert _sign_in(svc.client, "张三", password).status_code == 401
    assert _sign_in(svc.client, "张三", fresh).status_code == 303
    assert main(["accounts", "--database-url", svc.url, "disable", "张三"]) == 0
    assert svc.client.get("/review", follow_redirects=False).status_code == 303
    assert _sign_in(svc.client, "张三", fresh).status_code == 401
    # Refusals are one Chinese line, exit 2, nothing written.
    assert main(["accounts", "--database-url", svc.url, "create", "李四", "--role", "staff"]) == 2
    assert "错误" in capsys.readouterr().err
    assert main(["accounts", "--database-url", svc.url, "create", "张三", "--role", "admin"]) == 2
    assert "用户名 张三 已被使用" in capsys.readouterr().err


def test_failed_sign_ins_are_throttled_per_account_and_per_address(svc, capsys):
    password = _created(capsys, ["accounts", "--database-url", svc.url, "create", "wang", "--role", "staff",
                                 "--grids", "P1"])
    for _ in range(5):
        assert _sign_in(svc.client, "wang", "guess-guess").status_code == 401
    locked = _sign_in(svc.client, "wang", password)  # even the right password waits now
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0 and "分钟后再试" in locked.text
    # Another name from the same address is not locked by wang's failures, until the address's limit.
    assert _sign_in(svc.client, "nobody", "guess-guess").status_code == 401
    for number in range(14):  # 5 + 1 + 14 = the address's 20 failures in the window
        assert _sign_in(svc.client, f"n{number}", "guess-guess").status_code == 401
    assert _sign_in(svc.client, "other", "guess-guess").status_code == 429


def test_the_admin_page_makes_and_resets_accounts_and_keeps_the_last_admin(svc, capsys):
    admin_password = _created(capsys, ["accounts", "--database-url", svc.url, "create", "boss", "--role", "admin"])
    assert _sign_in(svc.client, "boss", admin_password).status_code == 303
    made = svc.client.post("/review/accounts", data={"csrf": _csrf(svc.client, "/review/accounts"),
                                                     "username": "li", "role": "staff", "grids": "P2"})
    assert made.status_code == 201 and "只显示这一次" in made.text
    shown = re.search(r'<code class="password">([^<]+)</code>', made.text).group(1)
    refused = svc.client.post("/review/accounts", data={"csrf": _csrf(svc.client, "/review/accounts"),
                                                        "username": "x", "role": "staff", "grids": "NOPE"})
    assert refused.status_code == 422 and "error" in refused.text
    # The test service's own admin key is an admin too; revoke it, then boss is the last admin.
    key_id = svc.call("GET", "/v1/keys", "admin").json()[0]["id"]
    assert svc.call("POST", f"/v1/keys/{key_id}/revoke", "admin").status_code == 200
    last = svc.client.post("/review/accounts/boss/disable", data={"csrf": _csrf(svc.client, "/review/accounts")})
    assert last.status_code == 409 and "最后一个管理员" in last.text
    svc.client.cookies.clear()
    assert _sign_in(svc.client, "li", shown).status_code == 303
    assert svc.client.get("/review/accounts").status_code == 403  # staff: not this page


def test_the_demo_start_prints_how_to_sign_in(svc, capsys):
    print_demo_sign_in(svc.app.state.sessions, svc.app.state.settings)
    out = capsys.readouterr().out
    found = dict(re.findall(r"用户名 (\w+)\s+密码 (\w+)", out))
    assert set(found) == {"admin", "wangge"} and "/review/login" in out
    assert _sign_in(svc.client, "wangge", found["wangge"]).status_code == 303
