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

import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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

from .audit import AuditWriter
from .charging import DEFAULT_PERSON_QUOTA, charge, charge_codes, quota_alert
from .check import check_router
from .keys import KeyService, Principal, db_url_for, make_engine
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
from .ratelimit import DailyQuota, RateLimiter
from .restrictions import MAX_BATCH, MAX_CODE_LENGTH, answer_codes, fetch, masked_code, read_salt, warm
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
from .snapshot import Snapshot, SnapshotManager

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


#: logging for `safecredit serve`: uvicorn's own logs and the service's access log, ID numbers masked
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_ids": {"()": "safecredit.api.masking.MaskIdNumbers"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_ids"],
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "safecredit": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


<<<<<<< HEAD
=======
# ---------------------------------------------------------------------------------- models


class Listing(BaseModel):
    entry_id: str | None = None
    ground: str | None = None
    ground_name: str | None = None
    basis: str | None = Field(
        None, description="the legal basis of the entry's list (its regime's, or its department's)"
    )
    regime: str | None = Field(None, description="aq11 (应急管理部令第11号) | industry | … (rules.md §3)")
    decided: bool | None = Field(None, description="true: a written listing decision backs the entry; false: inferred")
    decision_no: str | None = None
    authority: str | None = None
    decision_date: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = Field(None, description="pending|listed|expired|repaired|objection_upheld|revoked")
    role: str | None = None


class Measure(BaseModel):
    matter: str | None = None
    name: str | None = None
    measure: str | None = None
    restricted_from: str | None = None
    restricted_until: str | None = Field(None, description="the day the measure lifts (exclusive); null: for life")
    for_life: bool = False
    basis: str | None = None
    source: str | None = Field(None, description="listing (a list entry) or ban (a person's statutory ban)")
    entry_id: str | None = None
    penalty_id: str | None = None
    implementing_department: str | None = None
    scope_industry: str | None = None


class RestrictionAnswer(BaseModel):
    code: str = Field(description="the code asked (a person's number masked but the last 4)")
    subject_type: Literal["unit", "person"]
    name: str | None = None
    restricted: bool
    as_of: str
    version: str | None = None
    matter: str | None = None
    known_at: str | None = None
    publication_as_of: str | None = None
    listings: list[Listing]
    measures: list[Measure]


SubjectType = Literal["unit", "person"]


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        max_length=200, description="USCC, resident ID number, or (subject_type=person) another document number"
    )
    subject_type: SubjectType | None = None
    matter: str | None = Field(None, max_length=100)
    as_of: date | None = None
    known_at: date | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=MAX_BATCH)  # as lookup
    subject_type: SubjectType | None = None
    matter: str | None = Field(None, max_length=100)
    as_of: date | None = None
    known_at: date | None = None


class BatchError(BaseModel):
    status: int
    detail: str
    type: str


class BatchItem(BaseModel):
    index: int
    code: str
    status: int
    answer: RestrictionAnswer | None = None
    error: BatchError | None = None


class BatchAnswer(BaseModel):
    version: str | None = None
    count: int
    restricted: int
    results: list[BatchItem]


class Page(BaseModel):
    feed: str
    version: str
    mode: Literal["full", "delta"]
    since_version: str | None = None
    limit: int
    count: int
    next_cursor: str | None = None
    items: list[dict[str, Any]]


class UnitVersion(BaseModel):
    uscc: str
    version: str
    as_of: str | None = None


class Record(UnitVersion):
    """One published row of a feed (its columns), with the version it comes from."""

    model_config = ConfigDict(extra="allow")


class IntermediaryAnswer(UnitVersion):
    ratings: list[dict[str, Any]]


class Explanation(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str
    id: str
    version: str


class FeedVersion(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str | None = None
    generated_at: str | None = None
    result: str | None = None
    pruned: bool = False


class FeedEntry(BaseModel):
    name: str
    title: str | None = None
    scope: str
    latest: str | None = None
    as_of: str | None = None
    row_count: int | None = None
    files: list[str]
    versions: list[FeedVersion]


class FeedCatalogue(BaseModel):
    version: str | None = None
    generated_at: str | None = None
    feeds: list[FeedEntry]


class Health(BaseModel):
    status: Literal["ok", "no_publication"]
    version: str | None = None
    generated_at: str | None = None
    feeds: dict[str, dict[str, Any]]
    snapshot_build_ms: float | None = None


# ---------------------------------------------------------------------------------- service


@dataclass
class Service:
    home: Path
    exports: Path
    keys: KeyService
    audit: AuditWriter
    snapshots: SnapshotManager
    limiter: RateLimiter
    salt: Any
    quota: DailyQuota
    anon_rate: float = 20.0  # calls/s per client address without a valid key (before any DB lookup)
    anon_burst: int = 200

    @property
    def store(self) -> FeedStore:
        return FeedStore(self.exports)


# ---------------------------------------------------------------------------------- dependencies

_bearer_scheme = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer sck_…`")


async def _principal(
    request: Request, _cred: HTTPAuthorizationCredentials | None = Security(_bearer_scheme)
) -> Principal:
    p = getattr(request.state, "principal", None)
    if p is None:  # the middleware answers 401 first; this guards direct mounts
        raise ApiProblem(
            401,
            "a valid API key is required",
            "需要有效的 API 密钥",
            kind="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return p


def require(scope: str | None):
    async def dep(p: Principal = Depends(_principal)) -> Principal:
        if scope is not None and scope not in p.scopes:
            raise ApiProblem(403, f"this key lacks the scope {scope}", f"该密钥没有 {scope} 权限", kind="forbidden")
        return p

    dep.__name__ = f"require_{(scope or 'any').replace(':', '_')}"
    return dep


@dataclass
class Reader:
    snap: Snapshot
    cur: Any
    svc: Service


async def reader(request: Request) -> AsyncIterator[Reader]:
    """The served snapshot and a cursor of it, for one request (async: no thread hop; every step
    is quick and non-blocking — the lock guards only a reference and a counter)."""
    svc: Service = request.app.state.service
    with svc.snapshots.acquire() as snap:
        if not snap.feeds:
            raise ApiProblem(
                503,
                "nothing has been published yet",
                "尚未发布任何数据",
                kind="not-published",
                headers={"Retry-After": "60"},
            )
        request.state.version = snap.version
        cur = snap.cursor()
        try:
            yield Reader(snap, cur, svc)
        finally:
            cur.close()


# ---------------------------------------------------------------------------------- helpers


def _encode_cursor(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict) or not is_version_id(data.get("v")) or not isinstance(data.get("k"), str):
            raise ValueError
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):  # a nested forgery is no cursor
        raise ApiProblem(
            400,
            "invalid cursor: pass next_cursor from the previous page unchanged",
            "cursor 无效：请原样使用上一页的 next_cursor",
            kind="invalid-cursor",
        ) from None


def _require_feed(snap: Snapshot, feed: str) -> None:
    if not snap.has(feed):
        raise ApiProblem(404, f"the feed {feed} is not published", f"数据集 {feed} 尚未发布", kind="feed-not-published")


def _scrub(value: Any) -> Any:
    """Belt and braces for answers built from feeds: no full ID number leaves, whatever a column holds."""
    if isinstance(value, str):
        return mask_ids_in_text(value) if len(value) >= 18 else value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _row(r: dict) -> dict:
    out = {}
    for k, v in r.items():
        v = json_value(v)
        if k in ("components", "red_triggers") and isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        out[k] = v
    return _scrub(out)


def page_of(r: Reader, feed: str, *, since_version: str | None, cursor: str | None, limit: int) -> dict:
    _require_feed(r.snap, feed)
    served = r.snap.feeds[feed]
    pos = _decode_cursor(cursor) if cursor else None
    if pos is not None:
        if pos.get("f") != feed or pos.get("s") != since_version:
            raise ApiProblem(
                400,
                "this cursor belongs to another listing (feed or since_version differ)",
                "cursor 与本次查询（数据集或 since_version）不符",
                kind="invalid-cursor",
            )
        version = pos["v"]  # a listing keeps the version it started with, even across a switch
    else:
        version = served.version
    if since_version is not None:
        return _delta_page(r, feed, since_version, version, pos, limit)
    rel, info = r.snap.relation(feed, version)
    idc = info.id_columns[0] if info.id_columns else None
    if not idc:
        raise ApiProblem(404, f"feed {feed} has no id column to page by", f"数据集 {feed} 无法分页", kind="not-found")
    after = pos["k"] if pos else None
    where = f'WHERE "{idc}" > ?' if after is not None else ""
    rows = fetch(
        r.cur,
        f'SELECT * FROM {rel} {where} ORDER BY "{idc}" LIMIT ?',
        [*([after] if after is not None else []), limit + 1],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = _encode_cursor({"f": feed, "v": version, "s": None, "k": str(rows[-1][idc])}) if more and rows else None
    return {
        "feed": feed,
        "version": version,
        "mode": "full",
        "since_version": None,
        "limit": limit,
        "count": len(rows),
        "next_cursor": nxt,
        "items": [_row(x) for x in rows],
    }


def _delta_page(r: Reader, feed: str, since: str, version: str, pos: dict | None, limit: int) -> dict:
    store = r.svc.store
    if not is_version_id(since):
        raise ApiProblem(
            422,
            "since_version is not a version id (e.g. 20261123T020000Z-3f9a1c)",
            "since_version 不是有效的版本号",
            kind="invalid-version",
        )
    if since == version:
        lines: list[dict] = []
    else:
        key = ("diff", feed, since, version)
        lines = r.snap.cache.get(key)
        if lines is None:
            store.versions_since(feed, since)  # VersionPruned → 410, unknown → 404
            lines = sorted(store.diff(feed, since, version), key=lambda d: json.dumps(d["id"], sort_keys=True))
            if version == r.snap.feeds[feed].version:
                _remember_diff(r.snap.cache, key, lines)
    after = pos["k"] if pos else None
    start = 0
    if after is not None:
        keys = [json.dumps(d["id"], sort_keys=True) for d in lines]
        import bisect

        start = bisect.bisect_right(keys, after)
    chunk = lines[start : start + limit]
    more = start + limit < len(lines)
    nxt = (
        _encode_cursor({"f": feed, "v": version, "s": since, "k": json.dumps(chunk[-1]["id"], sort_keys=True)})
        if more and chunk
        else None
    )
    return {
        "feed": feed,
        "version": version,
        "mode": "delta",
        "since_version": since,
        "limit": limit,
        "count": len(chunk),
        "next_cursor": nxt,
        "items": _scrub(chunk),
    }


#: whole-feed diffs kept per snapshot. Only diffs *to the served version* are kept (the sync every
#: consumer runs): a cursor names its own version, and caching every (since, version) pair let one
#: key fill memory with retention² diffs (issue 11).
MAX_CACHED_DIFFS = 8


def _remember_diff(cache: dict, key: tuple, lines: list[dict]) -> None:
    diffs = [k for k in list(cache) if isinstance(k, tuple) and k[0] == "diff"]  # list(): other threads add
    for old in diffs[: max(0, len(diffs) - MAX_CACHED_DIFFS + 1)]:  # oldest first (insertion order)
        cache.pop(old, None)
    cache[key] = lines


def _uscc(value: str) -> str:
    code = normalise_code(value)[:64]
    if not is_valid_uscc(code):
        raise ApiProblem(
            422,
            "not a valid unified social credit code (18 characters, check character)",
            "不是有效的统一社会信用代码（18位，校验码）",
            kind="malformed-code",
        )
    return code


def record_for(r: Reader, feed: str, uscc: str, as_of: date | None) -> tuple[list[dict], str, str | None]:
    """Rows of a per-unit feed for `uscc`: from the served version, or with `as_of` from the latest
    served version whose business date is on or before it (today's rows answer for today)."""
    _require_feed(r.snap, feed)
    served = r.snap.feeds[feed]
    version = served.version
    if as_of is not None and (served.as_of is None or as_of < served.as_of):
        items = [
            i
            for i in r.svc.store.versions(feed).get("items") or []
            if i.get("result") == "success" and i.get("as_of") and str(i["as_of"]) <= as_of.isoformat()
        ]
        if not items:
            raise ApiProblem(
                404,
                f"no version of {feed} answers for {as_of.isoformat()}",
                f"{feed} 没有 {as_of.isoformat()} 及之前的版本",
                kind="not-published-then",
            )
        best = max(items, key=lambda i: (str(i["as_of"]), i["version"]))
        if best.get("pruned"):
            raise VersionPruned(
                f"version {best['version']} of {feed} (as of {best['as_of']}) was pruned",
                f"{feed} 的版本 {best['version']} 已按保留策略删除",
            )
        version = best["version"]
    rel, info = r.snap.relation(feed, version)
    rows = fetch(r.cur, f"SELECT * FROM {rel} WHERE uscc = ?", [uscc]) if "uscc" in info.columns else []
    return rows, version, info.as_of.isoformat() if info.as_of else None


def charge_codes(svc: Service, p: Principal, codes: list[str], subject_type: str | None) -> None:
    """One rate token per code asked (the middleware took the first) and the key's daily quota of
    person codes: without this a 1,000-code batch cost one token, and a key could test ~100k
    person codes per second (issue 11)."""
    n = len(codes)
    if n > 1:
        wait = svc.limiter.take(p.key_id, p.rate_per_second, p.burst, cost=n - 1, need=min(n, p.burst) - 1)
        if wait > 0:
            raise ApiProblem(
                429,
                f"rate limit of {p.rate_per_second:g} codes/s (burst {p.burst}) exceeded: a batch "
                f"is charged one token per code; retry after {wait:.2f} s",
                f"超过查询速率上限（批量查询按代码个数计），请 {wait:.0f} 秒后重试",
                kind="rate-limited",
                headers={"Retry-After": retry_after_header(wait)},
            )
    persons = sum(
        1
        for c in codes
        if subject_type == "person"
        or (subject_type is None and not is_valid_uscc(normalise_code(str(c))[:MAX_CODE_LENGTH]))
    )
    if not svc.quota.spend(p.key_id, persons, datetime.now(timezone.utc).date().isoformat()):
        tomorrow = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        wait = (tomorrow - datetime.now(timezone.utc)).total_seconds()
        raise ApiProblem(
            429,
            f"this key's daily quota of {svc.quota.limit} person codes is used up "
            f"(this call asks about {persons}); it renews at 00:00 UTC",
            f"该密钥今日个人代码查询配额（{svc.quota.limit}）已用尽，UTC 零点恢复",
            kind="quota-exhausted",
            headers={"Retry-After": retry_after_header(wait)},
        )


def _answer_codes(
    r: Reader, codes: list[str], subject_type: str | None, matter: str | None, as_of: date | None, known_at: date | None
) -> list[dict | ApiProblem]:
    return answer_codes(
        r.snap, r.cur, r.svc.salt, codes, subject_type=subject_type, matter=matter, as_of=as_of, known_at=known_at
    )


>>>>>>> regimes
# ---------------------------------------------------------------------------------- the app


def create_app(
    home: Path | str | None = None,
    db_url: str | None = None,
    *,
    poll_interval: float = 1.0,
    auth_cache_seconds: float = 1.0,
    person_quota: int = DEFAULT_PERSON_QUOTA,
    anon_rate: float = 20.0,
    anon_burst: int = 200,
    audit_max_spooled: int = 100_000,
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
        SnapshotManager(paths.exports, poll_interval=poll_interval, warm=warm),
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
        try:
            yield
        finally:
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
        redoc_url=None,
        static_url=DOCS_STATIC,
    )
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
