"""Review page sessions on the server: started at sign-in, ended at sign-out, expired when idle.

The signed cookie carries only the session's random id (and the CSRF token); the row says whether it
is still alive, so a copied cookie is worth nothing once its owner signs out or goes idle.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from api.tables import ApiKeyRow, WebSessionRow, aware, now

# last_seen_at is written at most this often: a page view must not cost a write each time.
TOUCH_EVERY = dt.timedelta(seconds=60)


def start(session: Session, key_id: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(WebSessionRow(id=token, key_id=key_id))
    return token


def end(session: Session, token: str) -> None:
    session.execute(update(WebSessionRow).where(WebSessionRow.id == token, WebSessionRow.ended_at.is_(None))
                    .values(ended_at=now()))


def alive_key(readers: sessionmaker[Session], writers: sessionmaker[Session], token: object,
              idle_s: float) -> ApiKeyRow | None:
    """The key of a live session, touching it when due; None for an unknown, ended or idle session."""
    if not isinstance(token, str) or not token:
        return None
    moment = now()
    with readers() as session:
        row = session.get(WebSessionRow, token)
        if row is None or row.ended_at is not None:
            return None
        last_seen = aware(row.last_seen_at)
        key = session.get(ApiKeyRow, row.key_id)
    if moment - last_seen > dt.timedelta(seconds=idle_s):
        with writers() as session, session.begin():
            session.execute(update(WebSessionRow).where(WebSessionRow.id == token).values(ended_at=moment))
        return None
    if moment - last_seen > TOUCH_EVERY:
        with writers() as session, session.begin():
            session.execute(update(WebSessionRow).where(WebSessionRow.id == token).values(last_seen_at=moment))
    return key

