"""Escalation (提级): an open need past its deadline without a project is flagged and searched one ring wider."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import audit, changes, outbox
from api.matching import served
from api.tables import NeedRow, now
from matcher.records import RINGS


def wider(ring: str) -> str:
    return RINGS[min(RINGS.index(ring) + 1, len(RINGS) - 1)]


def escalate(session: Session, today: dt.date, actor: tuple[int | None, str]) -> list[str]:
    """Flag overdue needs and widen their ring; call inside a transaction. Returns the need ids flagged.

    Each flagged need is logged as escalated (so it is matched again, in its wider ring) and announced
    by a need.escalated event. Rows another worker is escalating at the same moment are skipped.
    """
    overdue = list(session.scalars(select(NeedRow).where(NeedRow.status == "open", NeedRow.escalated.is_(False),
                                                         NeedRow.deadline.is_not(None), NeedRow.deadline < today)
                                   .order_by(NeedRow.id).with_for_update(skip_locked=True)))
    done = served(session, [n.id for n in overdue])
    flagged = []
    for need in overdue:
        if need.id in done:
            continue
        before = need.ring
        need.escalated, need.escalated_at, need.ring = True, now(), wider(need.ring)
        audit.record(session, actor, "escalate", "need", need.id, {"ring": [before, need.ring]})
        outbox.emit(session, "need.escalated", {"need_id": need.id, "grid": need.grid, "ring": need.ring,
                                                "previous_ring": before, "deadline": need.deadline})
        flagged.append(need.id)
    changes.record(session, "need", flagged, "escalated")
    return flagged
