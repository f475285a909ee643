"""Builds the FastAPI app: database, engine and background work are set up in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import changes, outbox
from api.arrivals import Arrivals
from api.changes import ChangeFollower
from api.changes import prune as prune_changes
from api.db import make_engine, make_readers, make_sessions, migrate
from api.demo import SYSTEM, load_demo, print_batch_summary, print_demo_sign_in
from api.engine import EngineState
from api.errors import ConflictError, DomainError, ForbiddenError, InvalidError, NotFoundError
from api.jobs import BatchLock, BatchRunner, mark_interrupted
from api.limits import BodyLimit
from api.matching import match_arrived
from api.models_state import active_model_dir, active_version, load_version
from api.observe import RequestContext, configure_logging
from api.routes import accounts_page, admin, import_page, match, models, pages, projects, review, stats, suggestions
from api.routes.lists_routes import grids, needs, resources
from api.schedule import Schedules
from api.settings import Settings
from api.web import templates
from api.writes import Writes
from matcher import Matcher
from matcher.errors import RecordError
from matcher.messages import field_label, zh
from matcher.packaged import packaged
from matcher.scoring import DEFAULT_MODEL_DIR, load_scorer
from matcher.threads import limit_blas

log = logging.getLogger("duijie.service")
# Seconds between prunes of the change log and sweeps for batch jobs a dead process left running.
HOUSEKEEPING_S = 60.0
STATIC_DIR = packaged("api", "static")


async def _follow_active_model(app: FastAPI, interval: float) -> None:
    """Swap in the model a promotion or rollback made active, even when another process made it."""
    while True:
        await asyncio.sleep(interval)
        version = None
        try:
            version = await asyncio.to_thread(_read_active_version, app)  # off the loop, as above
            if version != app.state.engine.model_version:
                scorer = await asyncio.to_thread(load_version, app.state.settings, version)
                await asyncio.to_thread(app.state.engine.set_scorer, scorer)  # publishes the next snapshot
                log.info("now scoring with model %s", version)
            app.state.model_problem = None
        except Exception as exc:  # keep serving with the last good model; the next round tries again
            log.exception("could not switch to the active model")
            if version is not None:
                app.state.model_problem = (f"active model {version} could not be loaded ({type(exc).__name__}: "
                                           f"{exc}); serving {app.state.engine.model_version}")


async def _follow_changes(app: FastAPI, interval: float) -> None:
    """Keep this worker's index in step with writes made by the others (and by other processes)."""
    rounds = 0
    while True:
        await asyncio.sleep(interval)
        rounds += 1
        try:
            await asyncio.to_thread(app.state.engine.load_new_embeddings)
            found = await asyncio.to_thread(app.state.changes.poll)
            if found.resources or found.grids or found.claimed:
                await asyncio.to_thread(app.state.writes.follow, found)
            if rounds % max(int(HOUSEKEEPING_S / interval), 1) == 0:
                await asyncio.to_thread(_housekeeping, app)
        except Exception:  # the database may be away: the next round reads from where this one stopped
            log.exception("could not follow the change log")


def _housekeeping(app: FastAPI) -> None:
    pruned = prune_changes(app.state.sessions) + outbox.prune(app.state.sessions)
    failed = app.state.batches.sweep()
    if pruned or failed:
        log.info("housekeeping: %d old change events pruned, %d stale batch jobs failed", pruned, failed)


def _read_active_version(app: FastAPI) -> str:
    with app.state.readers() as session:
        return active_version(session)


def create_app(settings: Settings | None = None, *, matcher: Matcher | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.json_logs)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = make_engine(settings.database_url, busy_timeout_s=settings.db_busy_timeout_s,
                         pool_size=settings.db_pool_size, pool_overflow=settings.db_pool_overflow,
                         pool_timeout_s=settings.db_pool_timeout_s)
        migrate(db)
        app.state.sessions = make_sessions(db)
        app.state.readers = make_readers(db)
        batch_lock = BatchLock(db)
        if batch_lock.nobody_holds_it():  # another worker's live batch is not a leftover
            mark_interrupted(app.state.sessions)
        worker = changes.serve_as_worker(app.state.sessions)  # the events this worker writes name it
        # Read before the index is built: writes committed during the build are applied again (harmless).
        app.state.changes = ChangeFollower(app.state.readers, app.state.sessions, worker)
        demo_loaded = settings.demo and load_demo(app.state.sessions, settings)
        limit_blas(settings.blas_threads)
        app.state.model_problem = None
        model_dir = active_model_dir(app.state.sessions, settings)
        try:
            load_scorer(model_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A broken active model must not keep the service down: serve the bundled default and say so.
            app.state.model_problem = f"active model at {model_dir} could not be loaded ({exc}); serving default"
            log.error(app.state.model_problem)
            model_dir = DEFAULT_MODEL_DIR
        app.state.engine = EngineState(app.state.sessions, model_dir, refit_drift=settings.refit_drift,
                                       matcher=matcher, readers=app.state.readers,
                                       matcher_params=settings.matcher_params())
        if matcher is None:
            app.state.engine.rebuild()
        app.state.batches = BatchRunner(app.state.sessions, app.state.engine, readers=app.state.readers, db=db,
                                       dask_scheduler=settings.dask_scheduler)
        writes = app.state.writes = Writes(app.state.sessions, app.state.readers, app.state.engine)
        if settings.arrival_matching:
            def match_on_arrival(ids, queued) -> None:
                match_arrived(app.state.sessions, app.state.readers, app.state.engine, ids, settings.match_k,
                              settings.min_score, queued)
                writes.after_commit([])  # their suggestion.created events go out now, not at the next poll

            writes.arrivals = Arrivals(match_on_arrival, limit=settings.arrival_queue,
                                       debounce_s=settings.arrival_debounce_s).start()
        if settings.webhook_url:
            writes.sender = outbox.Sender(app.state.sessions, settings.webhook_url, settings.webhook_secret,
                                          poll_s=settings.webhook_poll_s).start()
        if demo_loaded:
            job = app.state.batches.start({}, settings.match_k, settings.min_score, SYSTEM)
            app.state.batches.wait()
            print_batch_summary(app.state.sessions, job.id)
        if settings.demo:
            print_demo_sign_in(app.state.sessions, settings)
        app.state.schedules = Schedules(app.state.sessions, app.state.batches, writes, worker=worker,
                                        batch_at=settings.batch_at, zone=settings.timezone,
                                        escalation_interval_s=settings.escalation_interval_s, k=settings.match_k,
                                        min_score=settings.min_score).start()
        tasks = [asyncio.create_task(_follow_active_model(app, settings.model_poll_s)),
                 asyncio.create_task(_follow_changes(app, settings.change_poll_s))]
        yield
        for task in tasks:
            task.cancel()
        app.state.schedules.shutdown()
        app.state.batches.wait(timeout=30)
        for part in (writes.arrivals, writes.sender):
            if part is not None:
                part.stop()
        db.dispose()

    app = FastAPI(title="Duijie (对接)", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  default_response_class=SafeJSONResponse,
                  description="Pairs needs (需求) with resources (资源) and keeps the projects list (项目清单).")
    app.openapi = lambda: _openapi(app)
    app.state.settings = settings
    app.state.session_secret = settings.session_secret or secrets.token_hex(32)
    for router in (grids, needs, resources, match.router, suggestions.router, projects.router, admin.keys,
                   admin.ops, models.router, review.router, stats.router, pages.router, accounts_page.router,
                   import_page.router):
        app.include_router(router)
    app.mount("/review/static", StaticFiles(directory=STATIC_DIR), name="review-static")
    app.mount("/docs-static", StaticFiles(directory=packaged("fastapi_offline", "static")), name="docs-static")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, upload_limit=settings.max_upload_bytes)
    app.add_middleware(RequestContext)  # outermost: every answer, a 413 included, carries the request id

    @app.exception_handler(review.SignInRequiredError)
    async def _sign_in(_: Request, exc: review.SignInRequiredError) -> RedirectResponse:
        return RedirectResponse("/review/login", status_code=status.HTTP_303_SEE_OTHER)

    # Starlette's class: an unknown path's 404 is raised as one, not as FastAPI's subclass.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        # The review page answers people with a page in their language; the API answers with JSON.
        if request.url.path.startswith("/review"):
            detail = exc.detail if isinstance(exc.detail, str) else ""
            return _error_page(request, exc.status_code, zh(detail, "page") or detail)
        return await http_exception_handler(request, exc)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError):
        # The one place where what went wrong in the lists, decisions and jobs becomes an HTTP status.
        code = DOMAIN_STATUS[type(exc)]
        if request.url.path.startswith("/review"):
            return _error_page(request, code, exc.zh or exc.message)
        # `detail` keeps the English words clients match on; `code` is stable, `message` is for people.
        body = {"detail": exc.message, "code": DOMAIN_CODE[type(exc)], "message": exc.zh or exc.message}
        return SafeJSONResponse(body | ({"field": exc.field} if exc.field else {}), status_code=code)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError):
        errors = [_echo_safe(e) for e in exc.errors()[:50]]
        said = "；".join(e["message"] for e in errors)
        if request.url.path.startswith("/review"):  # a person typed the address or sent the form: a page
            return _error_page(request, status.HTTP_422_UNPROCESSABLE_CONTENT, said)
        # The input is echoed to say what came, but never a value JSON cannot carry (NaN, Infinity) and
        # never more than a line of it: a 200 MB body is not sent back.
        return SafeJSONResponse({"detail": jsonable_encoder(errors), "code": "invalid_request", "message": said},
                                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(RecordError)
    async def _record_error(_: Request, exc: RecordError) -> JSONResponse:
        return SafeJSONResponse({"detail": str(exc), "code": "invalid_field", "field": exc.field, "message": exc.zh},
                                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        return SafeJSONResponse({"detail": "the change conflicts with stored data (a duplicate or a full resource)"},
                            status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # Schemas bound every field to its column; this is the last guard if one slips through.
        log.warning("value refused by the database: %s", exc.orig)
        return SafeJSONResponse({"detail": f"a value does not fit the database: {str(exc.orig).splitlines()[0]}"},
                            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: Exception) -> JSONResponse:
        # Lock waits past the busy timeout, deadlocks, a lost connection or every pooled connection in
        # use: the request changed nothing, so the client may simply try again.
        log.warning("database busy: %s", exc)
        return SafeJSONResponse({"detail": "the database is busy; retry shortly"},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})

    return app


# Error answers every route may give, documented with the shape they have: {"detail": "..."}.
PROBLEM = {"$ref": "#/components/schemas/Problem"}
ERRORS = {"401": "no API key, or an unknown or revoked one", "403": "the key's role or grids may not do this",
          "503": "the database is busy or away: retry after the Retry-After seconds"}
WRITE_ERRORS = {"409": "conflicts with stored data (decided, full, a duplicate id with other content)",
                "413": "the body is larger than the service accepts"}


def _openapi(app: FastAPI) -> dict:
    """The OpenAPI document with bearer keys and the error answers declared beside the successes."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = {
        "type": "object", "title": "Problem", "required": ["detail"],
        "properties": {"detail": {"type": "string", "description": "what was wrong, naming the field or record"}}}
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                "description": "an API key from `duijie keys create`"}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            public = path in ("/healthz", "/readyz")
            if not public:
                operation["security"] = [{"bearer": []}]
            for code, text in {**({} if public else ERRORS),
                               **(WRITE_ERRORS if method in ("post", "patch") else {}),
                               **({"404": "no record with that id"} if "{" in path else {})}.items():
                responses.setdefault(code, {"description": text, "content": {"application/json": {"schema": PROBLEM}}})
            if "422" in responses:  # the body's shape (a list of field errors) or a record rule (one message)
                content = responses["422"].setdefault("content", {}).setdefault("application/json", {})
                content["schema"] = {"anyOf": [{"$ref": "#/components/schemas/HTTPValidationError"}, PROBLEM]}
    app.openapi_schema = schema
    return schema


DOMAIN_STATUS = {NotFoundError: status.HTTP_404_NOT_FOUND, ConflictError: status.HTTP_409_CONFLICT,
                 ForbiddenError: status.HTTP_403_FORBIDDEN, InvalidError: status.HTTP_422_UNPROCESSABLE_CONTENT}
# The machine-readable kind of each refusal, stable across wording changes.
DOMAIN_CODE = {NotFoundError: "not_found", ConflictError: "conflict", ForbiddenError: "forbidden",
               InvalidError: "invalid"}


def _error_page(request: Request, code: int, message: object):
    return templates.TemplateResponse(request, "error.html", {"code": code, "message": message,
                                                              "principal": None, "csrf": ""}, status_code=code)


# How much of a refused value a validation error echoes back.
ECHO_CHARS = 200


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a lone surrogate a client sent (valid in a JSON string, not in UTF-8)
    comes back as U+FFFD wherever it is echoed, instead of failing the response with a 500."""

    def render(self, content: object) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # rare: only then pay for the second pass
            return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace").encode("utf-8")


def _echo_safe(error: dict) -> dict:
    """A validation error whose echoed input is finite JSON and at most ECHO_CHARS long."""
    error = dict(error)
    if "input" in error:
        try:
            text = json.dumps(error["input"], ensure_ascii=False, allow_nan=False, default=str)
        except ValueError:  # NaN or Infinity somewhere inside
            text = repr(error["input"])
            error["input"] = text[:ECHO_CHARS]
        else:
            if len(text) > ECHO_CHARS:
                error["input"] = text[:ECHO_CHARS] + "…"
    if isinstance(error.get("ctx"), dict):  # limits and causes: numbers stay numbers, the rest says itself
        error["ctx"] = {key: value if _plain(value) else str(value) for key, value in error["ctx"].items()}
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "form")]
    said = zh(str(error.get("type", "")), "pydantic") or str(error.get("msg", ""))
    limits = {k: v for k, v in (error.get("ctx") or {}).items() if k in LIMIT_ZH}
    if limits:
        said += "（" + "，".join(f"{LIMIT_ZH[k]} {v}" for k, v in limits.items()) + "）"
    error["message"] = f"{field_label('.'.join(loc))}：{said}" if loc else said
    return error


# The limits a validation error names, in Chinese.
LIMIT_ZH = {"max_length": "最多", "min_length": "至少", "ge": "不小于", "le": "不大于", "gt": "大于", "lt": "小于",
            "expected": "可选"}


def _plain(value: object) -> bool:
    return isinstance(value, int | str) or (isinstance(value, float) and math.isfinite(value))
