"""The service's Prometheus figures, in one place so each is defined once.

With several workers (`duijie serve --workers N`) prometheus-client's multiprocess mode sums the
workers' files in PROMETHEUS_MULTIPROC_DIR; gauges then report each live worker's value.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

# Seconds: from a cached lookup (ms) to a slow request on a loaded machine.
LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LONG = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)

REQUESTS = Histogram("duijie_http_request_seconds", "HTTP request latency by route template",
                     ("method", "route", "status"), buckets=LATENCY)
MATCH = Histogram("duijie_match_seconds", "Engine time of one need's top-k (scoring only)", buckets=LATENCY)
SUGGESTIONS = Counter("duijie_suggestions_total", "Suggestions made, accepted and rejected", ("event",))
BATCH = Histogram("duijie_batch_seconds", "Batch assignment jobs, start to finish", ("status",), buckets=LONG)
REFIT = Histogram("duijie_refit_seconds", "Index fits: start-up, grid changes and vocabulary refits", buckets=LONG)
INDEX_SIZE = Gauge("duijie_index_resources", "Resources a need can be paired with", multiprocess_mode="livemax")
TOMBSTONES = Gauge("duijie_index_tombstones", "Retired index rows awaiting compaction", multiprocess_mode="livemax")
DRIFT = Gauge("duijie_vocabulary_unknown_share",
              "Share of word tokens written since the last fit that the vocabulary lacks", multiprocess_mode="livemax")

WEBHOOKS = Counter("duijie_webhook_attempts_total", "Webhook delivery attempts: delivered, failed (will retry), dead",
                   ("result",))
OUTBOX = Gauge("duijie_webhook_outbox", "Webhook events by state: pending, delivered, dead", ("state",),
               multiprocess_mode="livemax")
ARRIVALS = Counter("duijie_arrivals_total", "Needs queued for matching on arrival: queued, matched, dropped "
                   "(queue full: the nightly batch matches them)", ("event",))
ARRIVAL_DELAY = Histogram("duijie_arrival_to_suggestion_seconds", "From a need's commit to its stored suggestions",
                          buckets=LATENCY)
SCHEDULED = Counter("duijie_scheduled_runs_total", "Scheduled jobs run by this worker: job and outcome",
                    ("job", "status"))


def exposition() -> tuple[bytes, str]:
    """The figures in Prometheus's text format, summed over workers when several run."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
