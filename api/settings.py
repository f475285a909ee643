"""Service settings, read once from DUIJIE_* environment variables (pydantic-settings)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from matcher.dense import APPROXIMATE_FROM
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
    # The engine (matcher.Matcher's parameters of the same names; see MATCHER_SETTINGS). The encoder's
    # threads are what operators size by: two per worker process on two cores (bench/RESULTS.md).
    encoder: str = "e5-small"
    encoder_threads: int = Field(default=2, ge=1)
    n_threads: int = Field(default=1, ge=1)  # faiss and sparse-product threads of the candidate search
    pool: int = Field(default=30, ge=1)  # word and embedding candidates per need before scoring
    nearby_limit: int = Field(default=300, ge=1)  # nearby candidates per need (its grid and area)
    chunk_size: int = Field(default=1000, ge=1)  # needs per chunk of a batch
    sides: str = "any"
    same_category: bool = False
    tokenizer_backend: str = "auto"
    # Distinct resource embeddings from which one need's search uses the approximate graph (HNSW); 0: never.
    approximate_from: int = Field(default=APPROXIMATE_FROM, ge=0)
    # The nightly batch over every open need, at this local time (HH:MM) in `timezone`; empty turns it off.
    batch_at: str = "02:00"
    timezone: str = "Asia/Shanghai"
    # Match on arrival: a need written by any door is matched in the background within about
    # `arrival_debounce_s` plus one engine call. A full queue leaves the rest to the nightly batch.
    arrival_matching: bool = True
    arrival_queue: int = Field(default=10_000, ge=1)
    arrival_debounce_s: float = Field(default=0.2, ge=0)
    # Webhooks (Standard Webhooks 1.0): where events are POSTed and the whsec_… secret that signs them.
    webhook_url: str = ""
    webhook_secret: str = ""
    # Seconds the webhook sender sleeps when it has nothing due (a commit with events wakes it at once).
    webhook_poll_s: float = Field(default=1.0, gt=0)
    # Seconds uvicorn's supervisor waits for a worker's health-check answer before it restarts it. A long
    # batch's C code can hold the interpreter for seconds on a busy machine; uvicorn's 5 s restarted it.
    worker_healthcheck_s: int = Field(default=300, ge=5)
    # Phone, ID-card and e-mail details in posts, masked for everyone but the platform and the staff of the
    # post's grid (api/privacy.py has the rule); false shows them whole to every role.
    mask_personal_data: bool = True
    demo: bool = False

    def matcher_params(self) -> dict[str, Any]:
        """The engine settings as matcher.Matcher keyword arguments."""
        params = {name: getattr(self, name) for name in MATCHER_SETTINGS}
        params["approximate_from"] = params["approximate_from"] or None  # 0 in the environment: always exact
        return params

    @model_validator(mode="after")
    def _engine(self) -> Settings:
        from matcher import Matcher

        try:
            Matcher(**self.matcher_params())._check_settings()
        except ValueError as exc:
            raise ValueError(f"DUIJIE_{str(exc).split(':', 1)[0].upper()}: {str(exc).split(':', 1)[1].strip()}") \
                from None
        return self

    @field_validator("batch_at")
    @classmethod
    def _batch_at(cls, value: str) -> str:
        from api.schedule import parse_time_of_day

        parse_time_of_day(value)
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"DUIJIE_TIMEZONE: expected an IANA zone such as Asia/Shanghai, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _webhooks(self) -> Settings:
        if self.webhook_url and not self.webhook_secret.startswith("whsec_"):
            raise ValueError("DUIJIE_WEBHOOK_SECRET: expected a secret starting with whsec_ when DUIJIE_WEBHOOK_URL "
                             f"is set, got {'nothing' if not self.webhook_secret else 'another form'}")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"DUIJIE_WEBHOOK_URL: expected an http(s) URL, got {self.webhook_url!r}")
        return self


# Settings passed to the engine as they are named: each must be a parameter of matcher.Matcher, checked
# here at import so a renamed parameter fails the service's start, not silently its tuning.
MATCHER_SETTINGS = ("shard_size", "encoder", "encoder_threads", "n_threads", "pool", "nearby_limit", "chunk_size",
                    "sides", "same_category", "tokenizer_backend", "approximate_from")


def _check_matcher_settings() -> None:
    from matcher.pipeline import Matcher

    accepted = inspect.signature(Matcher.__init__).parameters
    unknown = [name for name in MATCHER_SETTINGS if name not in accepted or name not in Settings.model_fields]
    if unknown:
        raise TypeError(f"MATCHER_SETTINGS: expected parameters of Matcher and fields of Settings, got {unknown}")


_check_matcher_settings()
