"""API keys: random secrets shown once, stored only as SHA-256 hashes, each with a role and grids."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.tables import ApiKeyRow, now

ROLES = ("platform", "staff", "analyst", "admin")


def hash_key(key: str) -> str:
    # A 256-bit random key needs no slow hash: nothing can be guessed from the digest.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, role: str, grids: Sequence[str] = (), note: str = "") -> tuple[ApiKeyRow, str]:
    """Store a new key for `role`; return the row and the plain key, which is never stored."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    if role == "staff" and not grids:
        raise ValueError("grids: expected at least one grid id for a staff key, got none")
    plain = "dj_" + secrets.token_urlsafe(32)
    row = ApiKeyRow(key_hash=hash_key(plain), prefix=plain[:10], role=role, grids=list(grids), note=note)
    session.add(row)
    session.flush()
    return row, plain


def find_key(session: Session, plain: str) -> ApiKeyRow | None:
    """The live key with this secret, or None for an unknown or revoked one."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(plain)))
    return row if row is not None and row.revoked_at is None else None


def revoke_key(session: Session, key_id: int) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise LookupError(f"key id: expected the id of an existing key, got {key_id}")
    if row.revoked_at is None:
        row.revoked_at = now()
    return row
