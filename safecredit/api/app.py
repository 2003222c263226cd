"""The exchange's HTTP API (exchange.md §2): `create_app(home, db_url)`.

    SAFECREDIT_HOME=DIR uvicorn "safecredit.api.app:create_app" --factory   # or: safecredit serve --home DIR

Request path, outermost first:

1. `ServiceMiddleware` (middleware.py, pure ASGI): body limit (413); on `/v1/*` and `/report`
   (relative to `root_path`) the per-address limit of keyless calls, the bearer key (401), the
   audit spool's room (503), the key's rate (429 with Retry-After); runs the route; spools the
   audit row before the answer starts (audit.py), then writes the access log line (masking.py:
   ID numbers masked in any form). Any error escaping a route becomes a 500 problem without a
   traceback in the answer.
2. The route (`routers/`, one module per resource): the scope (403), the served snapshot (503
   while nothing is published), a DuckDB cursor opened only if the answer reads (service.py).
3. Exception handlers: every error is `application/problem+json` (RFC 9457), including FastAPI's
   validation errors (which never echo the input: it may be an ID number).

This module only assembles: the models are in schemas.py, paging in paging.py, prices in
charging.py. Names that lived here before that split are still importable from here (`__all__`).
"""

from __future__ import annotations

import gc
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from safecredit.config import Paths, resolve_home
from safecredit.errors import NotFound
from safecredit.explain import explain_published
from safecredit.publish.errors import UnsafePath, VersionNotFound, VersionPruned

from .answer_index import PUBLISHED, TIMELINES
from .audit import AuditWriter
from .charging import DEFAULT_PERSON_QUOTA, charge, charge_codes, quota_alert
from .check import check_router
from .fastpath import HotRouteFirst
from .keys import KeyService, Principal, db_url_for, make_engine
from .logformat import LOG_CONFIG
from .masking import MaskIdNumbers, mask_path
from .middleware import ServiceMiddleware
from .paging import DEFAULT_LIMIT, MAX_CACHED_DIFFS, MAX_LIMIT, page_of
from .problems import (
    ApiProblem,
    add_problem_schema,
    problem_body,
    problem_response,
    problem_responses,
)
from .quota import DailyQuota
from .ratelimit import RateLimiter
from .restrictions import answer_codes, warm
from .routers import explain, feeds, lists, restrictions, units
from .rows import record_for
from .schemas import (
    BatchAnswer,
    BatchError,
    BatchItem,
    BatchRequest,
    Explanation,
    FeedCatalogue,
    FeedEntry,
    FeedVersion,
    Health,
    IntermediaryAnswer,
    Listing,
    LookupRequest,
    Measure,
    Page,
    Record,
    RestrictionAnswer,
    SubjectType,
    UnitVersion,
)
from .service import BEARER, LazyCursor, Reader, Service, reader, require, serving
from .snapshot import Snapshot, fetch
from .snapshot_manager import SnapshotManager
from .subjects import MAX_BATCH, MAX_CODE_LENGTH, masked_code, read_salt

log = logging.getLogger("safecredit.api")
access_log = logging.getLogger("safecredit.access")

#: what this module offers: the app, and the names importable from here before the API was split
#: by resource (`routers/`, `schemas.py`, `paging.py`, `service.py`, `charging.py`, `rows.py`,
#: `safecredit.explain.explain_published`): other code and branches still import them from here
__all__ = [
    "create_app",
    "LOG_CONFIG",
    "API_VERSION",
    "AUDIT_SPOOL",
    # moved
    "DEFAULT_PERSON_QUOTA",
    "charge",
    "charge_codes",
    "DEFAULT_LIMIT",
    "MAX_CACHED_DIFFS",
    "MAX_LIMIT",
    "page_of",
    "MAX_BATCH",
    "MAX_CODE_LENGTH",
    "answer_codes",
    "fetch",
    "masked_code",
    "record_for",
    "explain_published",
    "BEARER",
    "LazyCursor",
    "Reader",
    "Service",
    "reader",
    "require",
    "serving",
    "BatchAnswer",
    "BatchError",
    "BatchItem",
    "BatchRequest",
    "Explanation",
    "FeedCatalogue",
    "FeedEntry",
    "FeedVersion",
    "Health",
    "IntermediaryAnswer",
    "Listing",
    "LookupRequest",
    "Measure",
    "Page",
    "Record",
    "RestrictionAnswer",
    "SubjectType",
    "UnitVersion",
]

API_VERSION = "1"
DOCS_STATIC = "/docs-assets"  # Swagger UI's scripts and styles, served by this process
AUDIT_SPOOL = "audit-spool"  # under the home: audit rows on their way to the database
#: audit rows the spool holds while the database is away, then 503: about 300 MB of disk, five
#: minutes of an outage at 3,000 calls/s (100,000 rows answered 503 after 30 s of one at full load)
AUDIT_MAX_SPOOLED = 1_000_000


# ---------------------------------------------------------------------------------- the app


class _App(HotRouteFirst, FastAPI):
    entry_type = ServiceMiddleware  # the hot route enters here (fastpath.HotRouteFirst)


def create_app(
    home: Path | str | None = None,
    db_url: str | None = None,
    *,
    poll_interval: float = 1.0,
    auth_cache_seconds: float = 1.0,
    person_quota: int = DEFAULT_PERSON_QUOTA,
    anon_rate: float = 20.0,
    anon_burst: int = 200,
    audit_max_spooled: int = AUDIT_MAX_SPOOLED,
) -> FastAPI:
    """The API over `<home>` (default `SAFECREDIT_HOME`, else the working directory, as the CLI;
    so `uvicorn safecredit.api.app:create_app --factory` works), exports from `Paths.exports`,
    keys and audit in `db_url` (default `SAFECREDIT_DB_URL`, else SQLite `<home>/service.db`).
    `anon_rate`/`anon_burst`: calls per second per client address without a valid key;
    `audit_max_spooled`: audit rows the spool holds while the database is away (then 503)."""
    home = resolve_home(home)
    paths = Paths(home)
    _mask_uvicorn_logs()
    engine = make_engine(db_url_for(home, db_url))
    svc = Service(
        home,
        paths.exports,
        KeyService(engine, cache_seconds=auth_cache_seconds),
        AuditWriter(engine, home / AUDIT_SPOOL, max_spooled=audit_max_spooled),
        SnapshotManager(
            paths.exports, poll_interval=poll_interval, warm=_warm_frozen, views=TIMELINES, compressed=PUBLISHED
        ),
        RateLimiter(),
        read_salt(home),
        DailyQuota(person_quota, engine, quota_alert),
        anon_rate,
        anon_burst,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await anyio.to_thread.run_sync(svc.snapshots.start)
        svc.audit.start()
        svc.quota.start()
        try:
            yield
        finally:
            svc.quota.stop()  # this server's unspent person-code leases go back to the database
            svc.audit.stop()
            svc.snapshots.stop()
            engine.dispose()

    # FastAPIOffline serves Swagger UI's scripts from the package itself: bureau networks are often
    # cut off from the internet, where FastAPI's CDN-loaded /docs page stays blank.
    app = FastAPIOffline(
        title="SafeCredit Exchange API · 安全生产信用与联合惩戒数据交换平台",
        version=API_VERSION,
        description="exchange.md §2. Every `/v1` route needs `Authorization: Bearer <api-key>`; errors are "
        "`application/problem+json` (RFC 9457).",
        lifespan=lifespan,
        # no OpenTelemetry here: FastAPI otherwise asks the OTel SDK for its providers (reading
        # environment variables) on every request, a few percent of the hot route
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redoc_url=None,
        static_url=DOCS_STATIC,
    )
    # FastAPIOffline is a function that makes a plain FastAPI: the same object, given the hot
    # route's entrance (a subclass adding one method, no state of its own)
    app.__class__ = _App
    app.state.service = svc
    app.add_middleware(ServiceMiddleware, service=svc)
    _exception_handlers(app)

    def custom_openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            app.openapi_schema = add_problem_schema(
                get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            )
        return app.openapi_schema

    app.openapi = custom_openapi

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["service"],
        summary="liveness, and the publication version being served",
    )
    def healthz() -> dict:
        snap = svc.snapshots.current()
        if snap is None or not snap.feeds:
            return {"status": "no_publication", "version": None, "generated_at": None, "feeds": {}}
        return {
            "status": "ok",
            "version": snap.version,
            "generated_at": snap.generated_at,
            "feeds": {
                f: {"version": i.version, "as_of": i.as_of.isoformat() if i.as_of else None, "rows": i.row_count}
                for f, i in snap.feeds.items()
            },
            "snapshot_build_ms": round(snap.built_in * 1000, 1),
        }

    for part in (restrictions, lists, units, explain, feeds):  # the /v1 routes, one module per resource
        app.include_router(part.router())
    app.include_router(check_router())  # /check: the check page for approval offices (check/)

    @app.get(
        "/report",
        tags=["feeds"],
        response_class=FileResponse,
        responses={200: {"content": {"text/html": {}}}, **problem_responses(401, 403, 404, 429, 503)},
        summary="the publication report of the version served (lists:read)",
    )
    def report(request: Request, _p: Principal = Depends(require("lists:read")), r: Reader = Depends(reader)):
        path = _find_report(r.snap)
        if path is None:
            raise ApiProblem(
                404,
                f"no publication report for {r.snap.version}",
                f"版本 {r.snap.version} 没有发布报告",
                kind="no-report",
            )
        return FileResponse(path, media_type="text/html; charset=utf-8")

    return app


def _warm_frozen(snap: Snapshot) -> None:
    """`warm`, then every object alive moved out of the garbage collector's view (`gc.freeze`):
    the snapshot's index, the app and its libraries are hundreds of thousands of long-lived
    objects, and a full collection traversing them paused requests for milliseconds."""
    warm(snap)
    gc.collect()
    gc.freeze()


def _mask_uvicorn_logs() -> None:
    """Run by plain `uvicorn … --factory` (not `safecredit serve`), uvicorn's own access log prints
    every path: mask ID numbers in it, and in its error log, whatever logging config is in force."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskIdNumbers) for f in logger.filters):
            logger.addFilter(MaskIdNumbers())


def _find_report(snap: Snapshot) -> Path | None:
    """The report the pipeline wrote for the version being served (safecredit.report_html)."""
    from safecredit.report_html import report_path

    if not snap.version:
        return None
    path = report_path(snap.exports, snap.version)
    try:
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(snap.exports.resolve()):
            return None
    except OSError:
        return None
    return path


def _exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _problem(request: Request, exc: ApiProblem):
        return problem_response(exc.status, exc.body(mask_path(request.url.path)), exc.headers)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound):
        return problem_response(
            404, problem_body(404, f"{exc.en} / {exc.zh}", kind="not-found", instance=mask_path(request.url.path))
        )

    @app.exception_handler(VersionPruned)
    async def _gone(request: Request, exc: VersionPruned):
        return problem_response(
            410, problem_body(410, f"{exc.en} / {exc.zh}", kind="version-pruned", instance=mask_path(request.url.path))
        )

    @app.exception_handler(VersionNotFound)
    async def _missing(request: Request, exc: VersionNotFound):
        return problem_response(
            404,
            problem_body(404, f"{exc.en} / {exc.zh}", kind="version-not-found", instance=mask_path(request.url.path)),
        )

    @app.exception_handler(UnsafePath)
    async def _unsafe(request: Request, exc: UnsafePath):  # never say more than "not here"
        return problem_response(
            404,
            problem_body(
                404,
                "no such feed, version or file / 没有该数据集、版本或文件",
                kind="not-found",
                instance=mask_path(request.url.path),
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False)
        body = problem_body(exc.status_code, detail, instance=mask_path(request.url.path))
        return problem_response(exc.status_code, body, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ][:50]  # never the input: it may be an ID number
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem_response(
            422,
            problem_body(
                422,
                f"invalid request — {detail} / 请求参数无效",
                kind="validation-error",
                instance=mask_path(request.url.path),
                errors=errors,
            ),
        )
