"""Service settings, read once from DUIJIE_* environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher.records import RINGS
from matcher.scoring import MODELS_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUIJIE_", extra="ignore")

    database_url: str = "sqlite:///duijie.db"
    host: str = "127.0.0.1"
    port: int = 8000
    # Where model versions live; the active one is named in the database, `default` until promoted.
    models_dir: Path = MODELS_DIR
    # Seconds between checks of which model is active, so a CLI promotion reaches a running service.
    model_poll_s: float = 2.0
    # How far a new need's search reaches before any escalation widens it.
    initial_ring: str = Field(default="street", pattern="^(" + "|".join(RINGS) + ")$")
    match_k: int = 10
    # BLAS threads of the process: the query path's products are small, and idle BLAS threads spin on the
    # cores the sentence encoder needs (see matcher/threads.py).
    blas_threads: int = Field(default=1, ge=1)
    # Request bodies larger than this are refused with 413 (uploads: max_upload_bytes).
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # None: the minimum score the active model's card recommends (chosen on dev data).
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    # Seconds between the service's own escalation checks; 0 turns the periodic check off.
    escalation_interval_s: float = 3600.0
    # Refit the vocabulary in the background once this share of the index was added since the last fit.
    refit_drift: float = 0.2
    # Signs the review page's session cookie. Set it (32+ random characters) so that a restart keeps
    # staff signed in; when empty, `duijie serve` makes one per start and gives it to all its workers.
    session_secret: str = ""
    # A review page session unused this long (seconds) ends; signing in again starts a new one.
    session_idle_s: float = Field(default=7200.0, gt=0)
    # Seconds between reads of the index's change log: the longest a write made by one worker waits
    # before the other workers' indexes see it (plus the time to apply it, milliseconds for an edit).
    change_poll_s: float = Field(default=1.0, gt=0)
    # Worker processes of `duijie serve` (PostgreSQL only: SQLite allows one writer process).
    workers: int = Field(default=1, ge=1, le=64)
    # Waits for the database, in seconds: SQLite's write lock, and a free pooled connection. Past them
    # the request is answered 503 with Retry-After.
    db_busy_timeout_s: float = Field(default=5.0, gt=0)
    db_pool_timeout_s: float = Field(default=5.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_overflow: int = Field(default=20, ge=0)
    # Logs as one JSON object per line (for a log collector); false gives plain text lines.
    json_logs: bool = True
    # Where the batch runs its heavy stages: "" (this process), local:N (N local Dask workers started per
    # batch) or tcp://HOST:8786 (a running Dask scheduler). The result is the same either way.
    dask_scheduler: str = ""
    # Resource rows per shard of the index: a batch on a cluster deals the shards round the workers, so
    # a worker holds about index ÷ workers (at least one shard). The answer does not depend on it.
    shard_size: int = Field(default=250_000, ge=1000)
    demo: bool = False
