"""Database tables (SQLAlchemy 2): the three lists, suggestions, reviews, keys, jobs and the audit log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from api.search import search_text


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCTime(TypeDecorator):
    """A moment stored in UTC and read back with its zone on every backend.

    PostgreSQL keeps the zone (timestamptz); SQLite keeps none and hands back naive datetimes, which the
    API then wrote without a zone while writes answered with one. Written: converted to UTC; read: UTC
    attached when the backend dropped it.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None or value.tzinfo is None:
            return value  # naive: the service's own UTC
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        return None if value is None else aware(value)


def aware(moment: dt.datetime) -> dt.datetime:
    """A stored time with its zone: SQLite hands back naive datetimes, and the service writes UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


class Base(DeclarativeBase):
    pass


class GridRow(Base):
    __tablename__ = "grids"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    kind: Mapped[str] = mapped_column(String(10), default="point")
    parent: Mapped[str] = mapped_column(String(200), default="")
    street: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, onupdate=now)


class _Listed:
    """Columns needs and resources share."""

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(500), default="", index=True)
    grid: Mapped[str] = mapped_column(String(200), default="", index=True)
    side: Mapped[str] = mapped_column(String(20), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    # The title as search reads it (api/search.py): kept by the listeners below, whatever writes the row.
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, onupdate=now)


class NeedRow(_Listed, Base):
    __tablename__ = "needs"
    deadline: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ring: Mapped[str] = mapped_column(String(10), default="street")
    escalated: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)


class ResourceRow(_Listed, Base):
    __tablename__ = "resources"
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    # The database itself refuses an over-full resource, whatever the application does.
    __table_args__ = (CheckConstraint("taken >= 0 AND taken <= capacity", name="ck_resources_capacity"),)


class SuggestionRow(Base):
    __tablename__ = "suggestions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    need_id: Mapped[str] = mapped_column(ForeignKey("needs.id"), index=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    features: Mapped[dict] = mapped_column(JSON, default=dict)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    # Shared terms as each post wrote them ({"term", "need", "resource"}): the review page highlights these.
    terms: Mapped[list] = mapped_column(JSON, default=list)
    model_version: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    origin: Mapped[str] = mapped_column(String(200), default="match")  # "match" or "batch:<job id>"
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)


class ReviewRow(Base):
    """A staff decision on a suggestion: the analysts' training data, never deleted."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id"), index=True)
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # One project per suggestion: two reviewers accepting at once cannot make two.
    suggestion_id: Mapped[int] = mapped_column(ForeignKey("suggestions.id"), unique=True)
    need_id: Mapped[str] = mapped_column(ForeignKey("needs.id"), index=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)
    outcome: Mapped[str] = mapped_column(Text, default="")  # the closing note
    # How it ended: resolved, partial or unresolved (解决/部分解决/未解决); satisfaction 1-5 when asked.
    resolution: Mapped[str] = mapped_column(String(12), default="")
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, onupdate=now)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(10))
    grids: Mapped[list] = mapped_column(JSON, default=list)
    streets: Mapped[list] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)


class AccountRow(Base):
    """A named account staff sign in to the pages with: a username and an Argon2 password hash, tied to a
    key row that holds its role and grid/street scope (so sessions, audit and scope work as for keys)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    password_set_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)


class SignInFailureRow(Base):
    """One failed sign-in, by account and by address: what throttling counts (api/throttle.py)."""

    __tablename__ = "sign_in_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)  # "account:<name>" or "address:<ip>"
    at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, index=True)


class AuditRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, index=True)


class BatchJobRow(Base):
    __tablename__ = "batch_jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)


class EmbeddingRow(Base):
    """A sentence embedding by (model, normalized text) hash: float32 bytes, encoded once for good."""

    __tablename__ = "embeddings"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(40), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, index=True)


class SettingRow(Base):
    """Small service state that must survive a restart, such as the active model version."""

    __tablename__ = "service_state"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


Index("ix_suggestions_need_status", SuggestionRow.need_id, SuggestionRow.status)


class IndexEventRow(Base):
    """The change log the index follows: one row per write that changes what a resource can be paired
    with (created, edited, closed, capacity taken or given back) or the grid tree. Written in the same
    transaction as the write, so every worker's index learns of exactly the writes that committed."""

    __tablename__ = "index_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(String(20))  # "need", "resource" or "grid"
    entity_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="")  # created, updated, closed, capacity, escalated
    origin: Mapped[str] = mapped_column(String(64), default="")  # the service process that wrote it; "" elsewhere
    claimed_by: Mapped[str] = mapped_column(String(64), default="")  # who matches a need written elsewhere
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now, index=True)


class WebSessionRow(Base):
    """A signed-in review page session, so that signing out ends it on the server (a copied cookie then
    opens nothing) and an idle one expires."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # a random token, carried in the signed cookie
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)


class ProjectNoteRow(Base):
    """A dated follow-up note on a project: who, when, what."""

    __tablename__ = "project_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)


class OutboxRow(Base):
    """A webhook event waiting for (or past) delivery, written in the transaction that caused it."""

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(40), unique=True)  # the webhook-id header, same on retries
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON bytes signed and sent
    created_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, delivered, dead
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_webhook_outbox_due", "status", "next_attempt_at"),)


class ScheduleRunRow(Base):
    """One run of a scheduled job for one slot (a night, an interval): the unique pair is the claim that
    makes each slot run once across every worker."""

    __tablename__ = "schedule_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(40))
    slot: Mapped[str] = mapped_column(String(40))
    worker: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="running")  # running, done, failed
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(UTCTime(), default=now)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCTime(), nullable=True)
    __table_args__ = (UniqueConstraint("job", "slot", name="uq_schedule_runs_job_slot"),)


Index("ix_suggestions_status_id", SuggestionRow.status, SuggestionRow.id)


@event.listens_for(NeedRow, "before_insert")
@event.listens_for(NeedRow, "before_update")
@event.listens_for(ResourceRow, "before_insert")
@event.listens_for(ResourceRow, "before_update")
def _keep_search_text(_mapper, _connection, row) -> None:
    row.search_text = search_text(row.title)
