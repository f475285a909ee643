"""API keys: random secrets shown once, stored only as SHA-256 hashes, each with a role and grids."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.tables import ApiKeyRow, now

ROLES = ("platform", "staff", "analyst", "leader", "admin")
# Roles a key may limit to grids or streets (staff must, a street leader must; platform and admin are district-wide).
SCOPED_ROLES = ("staff", "analyst", "leader")


def hash_key(key: str) -> str:
    # A 256-bit random key needs no slow hash: nothing can be guessed from the digest.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, role: str, grids: Sequence[str] = (), note: str = "",
               streets: Sequence[str] = (), *, check: bool = True) -> tuple[ApiKeyRow, str]:
    """Store a new key for `role`; return the row and the plain key, which is never stored.

    Grids and streets must be in the grid list (`check=False` only for tests that make keys first)."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    if role == "staff" and not grids and not streets:
        raise ValueError("grids: expected at least one grid id (or --streets) for a staff key, got none")
    if role == "leader" and not grids and not streets:
        raise ValueError("streets: expected at least one street (or grid) for a leader key, got none")
    if (grids or streets) and role not in SCOPED_ROLES:
        raise ValueError(f"grids, streets: a {role} key covers the whole district; expected none, got "
                         f"{', '.join([*grids, *streets])}")
    if check and (grids or streets):
        from api.scope import grid_tree

        bad_grids, bad_streets = grid_tree(session).unknown(list(grids), list(streets))
        if bad_grids:
            raise ValueError(f"grids: expected ids of grids in the grid list, got unknown {', '.join(bad_grids)}")
        if bad_streets:
            raise ValueError(f"streets: expected streets named in the grid list, got unknown {', '.join(bad_streets)}")
    plain = "dj_" + secrets.token_urlsafe(32)
    row = ApiKeyRow(key_hash=hash_key(plain), prefix=plain[:10], role=role, grids=list(grids),
                    streets=list(streets), note=note)
    session.add(row)
    session.flush()
    return row, plain


def find_key(session: Session, plain: str) -> ApiKeyRow | None:
    """The live key with this secret, or None for an unknown or revoked one."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(plain)))
    return row if row is not None and row.revoked_at is None else None


class LastAdminError(ValueError):
    """Revoking this key (or disabling this account) would leave nobody able to administer the service."""

    zh = "这是最后一个管理员，不能停用：请先为另一位管理员建立账号或密钥"


def revoke_key(session: Session, key_id: int) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise LookupError(f"key id: expected the id of an existing key, got {key_id}")
    if row.revoked_at is None and row.role == "admin":
        others = session.scalar(select(func.count()).select_from(ApiKeyRow).where(
            ApiKeyRow.role == "admin", ApiKeyRow.revoked_at.is_(None), ApiKeyRow.id != key_id))
        if not others:
            raise LastAdminError(f"key id {key_id}: expected a key other than the last live admin key")
    if row.revoked_at is None:
        row.revoked_at = now()
    return row
