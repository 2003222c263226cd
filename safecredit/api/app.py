"""The exchange's HTTP API (exchange.md §2): `create_app(home, db_url)`.

    SAFECREDIT_HOME=DIR uvicorn "safecredit.api.app:create_app" --factory   # or: safecredit serve --home DIR

Request path, outermost first:

1. `ServiceMiddleware` (middleware.py, pure ASGI): body limit (413); on `/v1/*` and `/report`
   (relative to `root_path`) the per-address limit of keyless calls, the bearer key (401), the
   audit's health (503), the key's rate (429 with Retry-After); runs the route, then writes the
   access log line (masking.py: ID numbers masked in any form) and, for guarded paths, the audit
   row. Any error escaping a route becomes a 500 problem without a traceback in the answer.
2. Route dependencies: the scope (403), the served snapshot (503 while nothing is published), one
   DuckDB cursor per request.
3. Exception handlers: every error is `application/problem+json` (RFC 9457), including FastAPI's
   validation errors (which never echo the input: it may be an ID number).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from safecredit.codes import is_valid_uscc, normalise_code
from safecredit.config import Paths, resolve_home
from safecredit.publish import ALL_FILES, FEEDS, FeedStore, is_version_id
from safecredit.publish.errors import UnsafePath, VersionNotFound, VersionPruned
from safecredit.publish.formats import json_value

from .audit import AuditWriter
from .keys import KeyService, Principal, db_url_for, make_engine
from .masking import MaskIdNumbers, mask_ids_in_text, mask_path
from .middleware import ServiceMiddleware
from .problems import (
    ApiProblem,
    add_problem_schema,
    problem_body,
    problem_response,
    problem_responses,
)
from .ratelimit import DailyQuota, RateLimiter, retry_after_header
from .restrictions import MAX_BATCH, MAX_CODE_LENGTH, answer_codes, fetch, masked_code, read_salt, warm
from .snapshot import Snapshot, SnapshotManager

log = logging.getLogger("safecredit.api")
access_log = logging.getLogger("safecredit.access")

API_VERSION = "1"
DOCS_STATIC = "/docs-assets"  # Swagger UI's scripts and styles, served by this process
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_PERSON_QUOTA = 10_000  # person codes per key per day (exchange.md §2)


def _quota_alert(key_id: str, limit: int) -> None:
    log.warning(
        "ALERT: key %s reached its daily quota of %d person codes / 密钥 %s 已达到每日个人代码查询配额 %d",
        key_id,
        limit,
        key_id,
        limit,
    )


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
) -> FastAPI:
    """The API over `<home>` (default `SAFECREDIT_HOME`, else the working directory, as the CLI;
    so `uvicorn safecredit.api.app:create_app --factory` works), exports from `Paths.exports`,
    keys and audit in `db_url` (default `SAFECREDIT_DB_URL`, else SQLite `<home>/service.db`).
    `anon_rate`/`anon_burst`: calls per second per client address without a valid key."""
    home = resolve_home(home)
    paths = Paths(home)
    _mask_uvicorn_logs()
    engine = make_engine(db_url_for(home, db_url))
    svc = Service(
        home,
        paths.exports,
        KeyService(engine, cache_seconds=auth_cache_seconds),
        AuditWriter(engine),
        SnapshotManager(paths.exports, poll_interval=poll_interval, warm=warm),
        RateLimiter(),
        read_salt(home),
        DailyQuota(person_quota, _quota_alert),
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

    app.include_router(_v1_router())

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


# ---------------------------------------------------------------------------------- /v1 routes


def _v1_router() -> APIRouter:
    router = APIRouter(prefix="/v1", responses=problem_responses(400, 401, 403, 404, 409, 410, 422, 429, 503))
    code_param = PathParam(..., max_length=200, description="USCC or ID number (prefer POST lookup for ID numbers)")
    limit_q = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor_q = Query(None, max_length=2000, description="next_cursor of the previous page")
    since_q = Query(None, max_length=40, description="a version id: what changed since it (410 when pruned)")

    def one(r: Reader, request: Request, p: Principal, code: str, subject_type, matter, as_of, known_at) -> dict:
        request.state.audit_code = masked_code(code)
        charge_codes(r.svc, p, [code], subject_type)
        result = _answer_codes(r, [code], subject_type, matter, as_of, known_at)[0]
        if isinstance(result, ApiProblem):
            raise result
        return result

    @router.get(
        "/restrictions/{code}",
        response_model=RestrictionAnswer,
        tags=["restrictions"],
        summary="may this unit (USCC) or person (ID number) be granted `matter`? (restrictions:read)",
    )
    def get_restrictions(
        request: Request,
        code: str = code_param,
        matter: str | None = Query(None, max_length=100),
        as_of: date | None = Query(None, description="answer for this date with today's knowledge"),
        known_at: date | None = Query(None, description="answer with what was published by then"),
        subject_type: SubjectType | None = Query(None),
        p: Principal = Depends(require("restrictions:read")),
        r: Reader = Depends(reader),
    ):
        return one(r, request, p, code, subject_type, matter, as_of, known_at)

    @router.post(
        "/restrictions/lookup",
        response_model=RestrictionAnswer,
        tags=["restrictions"],
        summary="the same with the code in the body (keeps ID numbers out of URLs) (restrictions:read)",
    )
    def lookup(
        body: LookupRequest,
        request: Request,
        p: Principal = Depends(require("restrictions:read")),
        r: Reader = Depends(reader),
    ):
        return one(r, request, p, body.code, body.subject_type, body.matter, body.as_of, body.known_at)

    @router.post(
        "/restrictions/batch",
        response_model=BatchAnswer,
        tags=["restrictions"],
        summary=f"up to {MAX_BATCH} codes at once, answers in the order asked (restrictions:read)",
    )
    def batch(
        body: BatchRequest,
        request: Request,
        p: Principal = Depends(require("restrictions:read")),
        r: Reader = Depends(reader),
    ):
        shown = [masked_code(c) for c in body.codes]
        request.state.audit_code = f"batch[{len(shown)}]:" + ",".join(shown)
        charge_codes(r.svc, p, body.codes, body.subject_type)
        results = _answer_codes(r, body.codes, body.subject_type, body.matter, body.as_of, body.known_at)
        items = []
        for i, (res, code) in enumerate(zip(results, shown)):
            if isinstance(res, ApiProblem):
                b = res.body()
                items.append(
                    {
                        "index": i,
                        "code": code,
                        "status": res.status,
                        "answer": None,
                        "error": {"status": res.status, "detail": b["detail"], "type": b["type"]},
                    }
                )
            else:
                items.append({"index": i, "code": res["code"], "status": 200, "answer": res, "error": None})
        return {
            "version": r.snap.version,
            "count": len(items),
            "restricted": sum(1 for x in items if x["answer"] and x["answer"]["restricted"]),
            "results": items,
        }

    @router.get(
        "/blacklist",
        response_model=Page,
        tags=["lists"],
        summary="the serious-dishonesty list, or what changed since a version (lists:read)",
    )
    def blacklist(
        since_version: str | None = since_q,
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        _p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        return page_of(r, "blacklist", since_version=since_version, cursor=cursor, limit=limit)

    @router.get(
        "/penalties", response_model=Page, tags=["lists"], summary="the penalties_public feed (双公示) (lists:read)"
    )
    def penalties(
        since_version: str | None = since_q,
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        _p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        return page_of(r, "penalties_public", since_version=since_version, cursor=cursor, limit=limit)

    def unit_record(r: Reader, request: Request, feed: str, uscc: str, as_of: date | None) -> dict:
        request.state.audit_code = masked_code(uscc)
        code = _uscc(uscc)
        rows, version, feed_as_of = record_for(r, feed, code, as_of)
        if not rows:
            raise ApiProblem(
                404, f"{code} is not in {feed} version {version}", f"{code} 不在 {feed} 中", kind="not-in-feed"
            )
        return {**_row(rows[0]), "uscc": code, "version": version, "as_of": feed_as_of}

    @router.get(
        "/credit/{uscc}", response_model=Record, tags=["credit"], summary="score, grade, components (credit:read)"
    )
    def credit(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        as_of: date | None = Query(None),
        _p: Principal = Depends(require("credit:read")),
        r: Reader = Depends(reader),
    ):
        return unit_record(r, request, "credit_scores", uscc, as_of)

    @router.get(
        "/premium-factors/{uscc}",
        response_model=Record,
        tags=["premium"],
        summary="factor, components, policy version, validity (premium:read)",
    )
    def premium_one(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        as_of: date | None = Query(None),
        _p: Principal = Depends(require("premium:read")),
        r: Reader = Depends(reader),
    ):
        return unit_record(r, request, "premium_factors", uscc, as_of)

    @router.get(
        "/premium-factors",
        response_model=Page,
        tags=["premium"],
        summary="every unit's premium factor, paged (premium:read)",
    )
    def premium_all(
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        _p: Principal = Depends(require("premium:read")),
        r: Reader = Depends(reader),
    ):
        return page_of(r, "premium_factors", since_version=None, cursor=cursor, limit=limit)

    @router.get(
        "/intermediaries/{uscc}",
        response_model=IntermediaryAnswer,
        tags=["lists"],
        summary="a technical-service agency's rating (lists:read)",
    )
    def intermediaries(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        _p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        request.state.audit_code = masked_code(uscc)
        code = _uscc(uscc)
        rows, version, as_of = record_for(r, "intermediary_ratings", code, None)
        if not rows:
            raise ApiProblem(
                404, f"{code} has no agency rating in version {version}", f"{code} 没有中介机构评级", kind="not-in-feed"
            )
        return {"uscc": code, "version": version, "as_of": as_of, "ratings": [_row(x) for x in rows]}

    @router.get(
        "/explain/{entry_id}",
        response_model=Explanation,
        tags=["lists"],
        summary="the published records behind a list entry, penalty, restriction, score or factor (lists:read)",
    )
    def explain(
        request: Request,
        entry_id: str = PathParam(..., max_length=64),
        p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        # an entry, penalty or restriction id names no person: the audit keeps it whole (which entry
        # was explained is the point of the record); anything else is masked like a code
        ident = entry_id.strip()
        request.state.audit_code = ident if _ENTRY_RE.match(ident) else masked_code(ident)
        return explain_published(r, entry_id, p.scopes)

    @router.get(
        "/feeds", response_model=FeedCatalogue, tags=["feeds"], summary="feeds and their versions (any valid key)"
    )
    def feeds(_p: Principal = Depends(require(None)), r: Reader = Depends(reader)):
        store = r.svc.store
        out = []
        for name in store.feed_names():
            versions = store.versions(name)
            if not versions.get("items"):
                continue
            spec = FEEDS.get(name)
            info = r.snap.feeds.get(name)
            out.append(
                {
                    "name": name,
                    "title": spec.title if spec else None,
                    "scope": spec.scope if spec else "lists:read",
                    "latest": info.version if info else versions.get("last_successful"),
                    "as_of": info.as_of.isoformat() if info and info.as_of else None,
                    "row_count": info.row_count if info else None,
                    "files": list(ALL_FILES),
                    "versions": [
                        {k: json_value(v) for k, v in item.items() if k != "reasons" or v}
                        for item in versions.get("items") or []
                    ],
                }
            )
        return {"version": r.snap.version, "generated_at": r.snap.generated_at, "feeds": out}

    media = {
        "full.parquet": "application/vnd.apache.parquet",
        "full.csv": "text/csv; charset=utf-8",
        "full.jsonl": "application/x-ndjson",
        "delta.jsonl": "application/x-ndjson",
        "manifest.json": "application/json",
    }

    @router.get(
        "/feeds/{feed}/{version}/{file}",
        tags=["feeds"],
        response_class=FileResponse,
        responses={
            200: {
                "content": {
                    "application/json": {},
                    "text/csv": {},
                    "application/x-ndjson": {},
                    "application/vnd.apache.parquet": {},
                },
                "description": "the file, byte for byte as published",
            }
        },
        summary="one file of a published version (the feed's scope; 410 when pruned)",
    )
    def feed_file(
        request: Request,
        feed: str = PathParam(..., max_length=64),
        version: str = PathParam(..., max_length=40),
        file: str = PathParam(..., max_length=40),
        p: Principal = Depends(require(None)),
    ):
        store = request.app.state.service.store
        spec = FEEDS.get(feed)
        if spec is None and feed not in store.feed_names():
            raise ApiProblem(404, f"unknown feed {feed[:64]!r}", "未知数据集", kind="not-found")
        scope = spec.scope if spec else "lists:read"
        if scope not in p.scopes:
            raise ApiProblem(
                403,
                f"this key lacks the scope {scope} that {feed} needs",
                f"该密钥没有读取 {feed} 所需的 {scope} 权限",
                kind="forbidden",
            )
        path = store.safe_file_path(feed, version, file)  # 404 / 410 / never outside the root
        request.state.version = version
        return FileResponse(
            path,
            media_type=media.get(file, "application/octet-stream"),
            filename=f"{feed}-{version}-{file}",
            content_disposition_type="inline",
        )

    return router


# ---------------------------------------------------------------------------------- explain

_ENTRY_RE = re.compile(r"^[EDR][0-9a-f]{16}$")


#: parts of a unit's explanation that need a scope beyond lists:read (exchange.md §2: a part the
#: key's scopes do not cover is left out — /v1/credit and /v1/premium-factors refuse such a key)
_SCOPED_PARTS = {
    "credit_score": ("credit_scores", "credit:read"),
    "premium_factor": ("premium_factors", "premium:read"),
}


def explain_published(r: Reader, ident: str, scopes: frozenset[str] | set[str]) -> dict:
    """What the served publication holds about an entry, penalty, restriction or unit (all masked),
    limited to what `scopes` may read."""
    snap, cur = r.snap, r.cur
    ident = ident.strip()
    out: dict[str, Any] = {"id": ident, "version": snap.version}

    def rows(feed: str, where: str, params: list, order: str = "") -> list[dict]:
        if not snap.has(feed):
            return []
        cols = set(snap.feeds[feed].columns)
        needed = set(re.findall(r'"(\w+)"', where))
        if not needed <= cols:
            return []
        return [_row(x) for x in fetch(cur, f'SELECT * FROM "{feed}" WHERE {where} {order}', params)]

    if _ENTRY_RE.match(ident) and ident[0] == "E":
        entry = rows("blacklist", '"entry_id" = ?', [ident])
        if entry:
            e = entry[0]
            out.update(
                kind="list_entry",
                entry=e,
                restrictions=rows("restrictions", '"entry_id" = ?', [ident], 'ORDER BY "matter"'),
                penalties=rows(
                    "penalties_public",
                    '"decision_no" = ? AND "authority_code" = ?',
                    [e.get("decision_no"), e.get("authority_code")],
                ),
                intermediary_ratings=rows("intermediary_ratings", 'list_contains("linked_entry_ids", ?)', [ident]),
                other_entries=[
                    {k: x.get(k) for k in ("entry_id", "ground", "status", "start_date", "end_date")}
                    for x in rows(
                        "blacklist",
                        '"subject_id" = ? AND "entry_id" <> ?',
                        [e.get("subject_id"), ident],
                        'ORDER BY "entry_id"',
                    )
                ],
            )
            return out
    if _ENTRY_RE.match(ident) and ident[0] == "D":
        pen = rows("penalties_public", '"penalty_id" = ?', [ident])
        bans = rows("restrictions", '"penalty_id" = ?', [ident], 'ORDER BY "matter"')
        if pen or bans:
            out.update(kind="penalty", penalty=pen[0] if pen else None, restrictions=bans)
            return out
    if _ENTRY_RE.match(ident) and ident[0] == "R":
        res = rows("restrictions", '"restriction_id" = ?', [ident])
        if res:
            src = res[0].get("entry_id")
            out.update(
                kind="restriction",
                restriction=res[0],
                entry=(rows("blacklist", '"entry_id" = ?', [src]) or [None])[0] if src else None,
            )
            return out
    code = normalise_code(ident)
    if is_valid_uscc(code):
        found = {
            "intermediary_ratings": rows("intermediary_ratings", '"uscc" = ?', [code]),
            "list_entries": rows("blacklist", '"subject_id" = ?', [code], 'ORDER BY "entry_id"'),
            "penalties": rows("penalties_public", '"subject_id" = ?', [code], 'ORDER BY "penalty_id"'),
        }
        # a part outside the key's scopes is never read: not even its existence may answer 200 vs 404
        scoped = {
            part: rows(feed, '"uscc" = ?', [code]) for part, (feed, scope) in _SCOPED_PARTS.items() if scope in scopes
        }
        if any(found.values()) or any(scoped.values()):
            out.update(kind="subject", id=code, **{part: (v or [None])[0] for part, v in scoped.items()}, **found)
            return out
    raise ApiProblem(
        404,
        "nothing in the served publication is known by this id (a list entry E…, penalty D…, "
        "restriction R… or a unit's USCC)",
        "当前发布版本中没有该编号的记录",
        kind="not-found",
    )
