"""Named accounts for the pages: a username and a password (Argon2id via argon2-cffi), created and reset
by admins. Each account stands on a key row that holds its role and grid/street scope, so sessions,
audit and scope treat an account exactly as a key; the key's own secret is never shown to anyone, so
the platform's keys stay the only keys in use.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.keys import create_key, revoke_key
from api.tables import AccountRow, ApiKeyRow, WebSessionRow, now

# RFC 9106's second recommended setting (64 MiB, 3 passes), argon2-cffi's default: ~0.1 s a sign-in here.
HASHER = PasswordHasher()
MIN_PASSWORD = 8
MAX_PASSWORD = 200
# Letters, digits, Chinese, dot, dash, underscore: what a grid office names its people by.
USERNAME = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,32}$")


class AccountError(ValueError):
    """A refused account operation; `zh` is what an admin reads."""

    def __init__(self, message: str, zh: str) -> None:
        super().__init__(message)
        self.zh = zh


def new_password() -> str:
    """A password to hand over once: 12 characters without look-alikes (0/O, 1/l/I), easy on a phone."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"password: expected {MIN_PASSWORD} to {MAX_PASSWORD} characters, got "
                           f"{len(password) if isinstance(password, str) else type(password).__name__}",
                           f"密码应为 {MIN_PASSWORD} 到 {MAX_PASSWORD} 个字符")
    return password


def create_account(session: Session, username: str, role: str, grids: Sequence[str] = (),
                   streets: Sequence[str] = (), password: str | None = None, *,
                   check: bool = True) -> tuple[AccountRow, str]:
    """Store a new account; returns it and its password (given, or made here), which is never stored."""
    username = username.strip() if isinstance(username, str) else ""
    if not USERNAME.match(username):
        raise AccountError(f"username: expected 2 to 32 letters, digits, Chinese characters, '.', '-' or '_', "
                           f"got {username!r}", "用户名应为 2 到 32 个汉字、字母、数字或 . - _")
    if session.scalar(select(AccountRow.id).where(AccountRow.username == username)) is not None:
        raise AccountError(f"username: expected a name not taken, got {username!r}", f"用户名 {username} 已被使用")
    password = check_password(password) if password is not None else new_password()
    key, _ = create_key(session, role, grids, f"account:{username}", streets, check=check)  # its secret unshown
    row = AccountRow(username=username, password_hash=HASHER.hash(password), key_id=key.id)
    session.add(row)
    session.flush()
    return row, password


def find(session: Session, username: str) -> AccountRow | None:
    return session.scalar(select(AccountRow).where(AccountRow.username == username.strip()))


def _named(session: Session, username: str) -> AccountRow:
    row = find(session, username)
    if row is None:
        raise AccountError(f"username: expected an existing account, got {username!r}",
                           f"没有用户名为 {username} 的账号")
    return row


def reset_password(session: Session, username: str, password: str | None = None) -> str:
    """A new password for the account; its open sessions end (whoever knew the old one is signed out)."""
    row = _named(session, username)
    password = check_password(password) if password is not None else new_password()
    row.password_hash, row.password_set_at = HASHER.hash(password), now()
    session.execute(update(WebSessionRow).where(WebSessionRow.key_id == row.key_id,
                                                WebSessionRow.ended_at.is_(None)).values(ended_at=now()))
    return password


def disable_account(session: Session, username: str) -> AccountRow:
    """Revoke the account's key: its sessions stop at their next request (the last admin is refused)."""
    row = _named(session, username)
    revoke_key(session, row.key_id)
    return row


def verify(session: Session, username: str, password: str) -> ApiKeyRow | None:
    """The live key behind this username and password, or None. A stale hash is upgraded in place."""
    row = find(session, username) if isinstance(username, str) and username.strip() else None
    if row is None:
        HASHER.hash(password or "x")  # as slow as a real check: timing does not tell which names exist
        return None
    try:
        HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = HASHER.hash(password)
    key = session.get(ApiKeyRow, row.key_id)
    return key if key is not None and key.revoked_at is None else None


def listing(session: Session) -> list[tuple[AccountRow, ApiKeyRow]]:
    stmt = select(AccountRow, ApiKeyRow).join(ApiKeyRow, ApiKeyRow.id == AccountRow.key_id).order_by(
        AccountRow.username)
    return [(account, key) for account, key in session.execute(stmt)]


def demo_accounts(session: Session) -> list[tuple[str, str, str]]:
    """The demo's sign-ins, made or given fresh passwords at each `serve --demo`: (username, password, role)."""
    from api.tables import GridRow

    streets = sorted({s for s in session.scalars(select(GridRow.street)) if s})
    out = []
    for username, role, scope in (("admin", "admin", ()), ("wangge", "staff", streets)):
        if find(session, username) is None:
            _, password = create_account(session, username, role, streets=scope)
        else:
            password = reset_password(session, username)
        out.append((username, password, role))
    return out
