"""Request ids, structured logs and request metrics: what an operator reads when something is slow.

Every request gets an id (the caller's X-Request-ID when it is a sane token, else a new one), echoed
in the response header and written on every log line made while the request runs.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
HEADER = "x-request-id"
# A caller's id is kept when it is this kind of token; anything else could forge log lines.
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access = logging.getLogger("duijie.access")
# Attributes every LogRecord has; the rest were passed with `extra=` and belong in the JSON line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if request_id.get():
            line["request_id"] = request_id.get()
        line |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"{text} [{request_id.get()}]" if request_id.get() else text


def configure_logging(json_logs: bool = True, level: int = logging.INFO) -> None:
    """Send the service's and uvicorn's logs to stderr, as JSON lines or plain text (once per process)."""
    root = logging.getLogger()
    if any(getattr(h, "_duijie", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs
                         else _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._duijie = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # into the same stream, once
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access line carries the route and request id
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per outgoing request is noise here


class RequestContext:
    """ASGI middleware: request id in and out, one access log line and the latency histogram by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER.encode(), b"").decode("latin-1")
        rid = given if SANE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER.encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.REQUESTS.labels(scope["method"], route, str(code)).observe(elapsed)
            access.info("%s %s %d", scope["method"], route, code,
                        extra={"path": scope["path"], "status": code, "ms": round(elapsed * 1000, 1)})
            request_id.reset(token)
