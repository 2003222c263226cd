"""The service a request is served by, and what a route takes from it: the key's principal and
scope (`require`, `serving`), the served snapshot and a lazy cursor of it (`reader`, `serving`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from safecredit.publish import FeedStore

from .audit import AuditWriter
from .keys import KeyService, Principal
from .problems import ApiProblem, problem_responses
from .quota import DailyQuota
from .ratelimit import RateLimiter
from .snapshot import Snapshot
from .snapshot_manager import SnapshotManager

log = logging.getLogger("safecredit.api")


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


def v1_router() -> APIRouter:
    """A router of /v1 routes (each module of `routers/` makes one; the app includes them all):
    the prefix is the routes' own, so a route's path (the audit's `route`) is the full one."""
    return APIRouter(prefix="/v1", responses=problem_responses(400, 401, 403, 404, 409, 410, 422, 429, 503))


_bearer_scheme = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer sck_…`")
#: the security requirement of a route that checks the key itself (`serving`), as OpenAPI shows it
BEARER = {"security": [{"HTTPBearer": []}]}


def principal_of(request: Request, scope: str | None) -> Principal:
    """The key the middleware verified (401 without one: it answers first; this guards direct
    mounts), 403 when it lacks `scope`."""
    return principal_in(request.scope, scope)


def principal_in(asgi: dict, scope: str | None) -> Principal:
    """`principal_of` for an ASGI scope (the middleware keeps the principal in its `state`)."""
    p = (asgi.get("state") or {}).get("principal")
    if p is None:
        raise ApiProblem(
            401,
            "a valid API key is required",
            "需要有效的 API 密钥",
            kind="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scope is not None and scope not in p.scopes:
        raise ApiProblem(403, f"this key lacks the scope {scope}", f"该密钥没有 {scope} 权限", kind="forbidden")
    return p


def require(scope: str | None):
    """The route dependency of `principal_of` (and the bearer scheme OpenAPI documents)."""

    async def dep(request: Request, _cred: HTTPAuthorizationCredentials | None = Security(_bearer_scheme)) -> Principal:
        return principal_of(request, scope)

    dep.__name__ = f"require_{(scope or 'any').replace(':', '_')}"
    return dep


class LazyCursor:
    """A DuckDB cursor of the snapshot, opened on first use: an answer from the in-memory index
    never opens one."""

    def __init__(self, snap: Snapshot):
        self._snap = snap
        self._cur = None

    def execute(self, *args, **kw):
        if self._cur is None:
            self._cur = self._snap.cursor()
        return self._cur.execute(*args, **kw)

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()


@dataclass
class Reader:
    snap: Snapshot
    cur: Any
    svc: Service
    principal: Principal | None = None


class served:
    """The served snapshot (503 while nothing is published) and a lazy cursor of it, held for one
    request of the ASGI scope `asgi`: the lock guards only a reference and a counter, nothing
    blocks. A class rather than a generator context manager: the hot route enters it on every call."""

    __slots__ = ("svc", "state", "principal", "snap", "cur")

    def __init__(self, asgi: dict, principal: Principal | None = None):
        self.svc: Service = asgi["app"].state.service
        self.state = asgi.setdefault("state", {})  # what `Request.state` reads and writes
        self.principal = principal

    def __enter__(self) -> Reader:
        svc = self.svc
        snap = self.snap = svc.snapshots.take()
        if not snap.feeds:
            svc.snapshots.give_back(snap)
            raise ApiProblem(
                503,
                "nothing has been published yet",
                "尚未发布任何数据",
                kind="not-published",
                headers={"Retry-After": "60"},
            )
        self.state["version"] = snap.version
        self.cur = LazyCursor(snap)
        return Reader(snap, self.cur, svc, self.principal)

    def __exit__(self, *exc) -> None:
        try:
            self.cur.close()
        finally:
            self.svc.snapshots.give_back(self.snap)


def serving(request: Request, scope: str) -> served:
    """`require(scope)` and `reader` in one, without FastAPI's dependency machinery: the hot
    routes (restrictions) take the principal the middleware found and the served snapshot here."""
    return served(request.scope, principal_in(request.scope, scope))


async def reader(request: Request) -> AsyncIterator[Reader]:
    """`served` as a route dependency (async: no thread hop)."""
    with served(request.scope) as r:
        yield r
