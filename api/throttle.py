"""Failed sign-ins counted per account and per address; past a limit, sign-in waits (HTTP 429).

Kept in the database, so every worker process counts the same failures and a restart forgets none.
Five wrong passwords for one name in 15 minutes lock that name for the rest of the window; twenty from
one address lock the address (a guesser trying many names). A success clears the name's count.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from api.tables import SignInFailureRow, aware, now

WINDOW = dt.timedelta(minutes=15)
LIMITS = {"account": 5, "address": 20}


def subjects(username: str, address: str) -> list[str]:
    """What one attempt counts against: the name tried (if any: a key sign-in has none, and one shared
    name for every key attempt would let anyone lock key sign-in for all) and the address it came from."""
    name = username.strip().lower()[:150]
    return ([f"account:{name}"] if name else []) + [f"address:{address[:150]}"]


def wait_seconds(session: Session, keys: list[str], moment: dt.datetime | None = None) -> int:
    """Seconds until a sign-in may be tried again for these subjects (0: now)."""
    moment = moment or now()
    wait = 0
    for key in keys:
        limit = LIMITS[key.split(":", 1)[0]]
        times = list(session.scalars(select(SignInFailureRow.at).where(
            SignInFailureRow.subject == key, SignInFailureRow.at > moment - WINDOW).order_by(SignInFailureRow.at)))
        if len(times) >= limit:
            # Free again when enough of the failures have left the window to be under the limit.
            freed = aware(times[len(times) - limit]) + WINDOW
            wait = max(wait, math.ceil((freed - moment).total_seconds()))
    return max(wait, 0)


def failed(session: Session, keys: list[str]) -> None:
    moment = now()
    session.add_all([SignInFailureRow(subject=key, at=moment) for key in keys])
    session.execute(delete(SignInFailureRow).where(SignInFailureRow.at <= moment - WINDOW))  # the past goes


def succeeded(session: Session, account_key: str) -> None:
    session.execute(delete(SignInFailureRow).where(SignInFailureRow.subject == account_key))

