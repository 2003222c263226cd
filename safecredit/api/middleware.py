"""`ServiceMiddleware` (pure ASGI), outermost: what every request goes through before a route.

On `/v1/*` and `/report` (relative to the app's `root_path`): callers without a valid key are limited
per client address *before* any database lookup; then the bearer key (401), the audit writer's
health (503: no answer goes out that could not be audited), the key's rate (429). Every request:
a body limit (413 before a byte of an oversized body is parsed), `nosniff`, `no-store` on `/v1`
answers (they are about persons and units, and must not sit in a shared cache), the access log
line (masked, control characters escaped, length capped) and for guarded paths the audit row. Any
error escaping a route becomes a 500 problem without a traceback in the answer.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from fastapi import HTTPException
from starlette.routing import compile_path

from .fastpath import FastRoute
from .masking import MASKED, mask_ids_in_text, mask_path
from .problems import PROBLEM_MEDIA_TYPE, problem_body, problem_bytes
from .ratelimit import retry_after_header

if TYPE_CHECKING:  # pragma: no cover
    from .app import Service
    from .keys import Principal

log = logging.getLogger("safecredit.api")
access_log = logging.getLogger("safecredit.access")

#: the largest request body read: a 1,000-code batch is about 30 KB
MAX_BODY = 256 * 1024


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"the request body exceeds {MAX_BODY // 1024} KiB / 请求体超过 {MAX_BODY // 1024} KiB")


def _bearer(scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            v = value.decode("latin-1").strip()
            if v[:7].lower() == "bearer ":
                return v[7:].strip() or None
            return None
    return None


def _header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers") or ():
        if k == name:
            return v.decode("latin-1")
    return None


def relative_path(scope) -> str:
    """The path the routes see: under a `root_path` (a proxy prefix) the scope's path carries it."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def route_template(scope, templates: list[tuple[re.Pattern, str, frozenset[str]]]) -> str:
    """The route a request was (or would have been) routed to, e.g. `/v1/restrictions/{code}`:
    a 401 or 429 answered before routing is audited with its route, not `(unmatched)`."""
    route = scope.get("route")
    found = getattr(route, "path_format", None) or getattr(route, "path", None)
    if found:
        return found
    path, method = relative_path(scope), scope.get("method", "").lower()
    other = None
    for regex, template, methods in templates:
        if regex.match(path):
            if method in methods:
                return template
            other = other or template  # the path exists, the method does not
    return other or "(unmatched)"


def route_templates(app) -> list[tuple[re.Pattern, str, frozenset[str]]]:
    """The documented routes (OpenAPI paths), literal ones first (`/lookup` before `/{code}`)."""
    paths = app.openapi().get("paths", {})
    out = [(compile_path(t)[0], t, frozenset(ops)) for t, ops in paths.items()]
    return sorted(out, key=lambda x: (x[1].count("{"), x[1]))


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def _method(scope, limit: int) -> str:
    """The request method as logs show it (any other text masked like a path)."""
    method = scope.get("method", "")
    return method if method in _METHODS else mask_path(str(method)[:limit])


def _client(scope) -> str:
    c = scope.get("client")
    return f"{c[0]}:{c[1]}" if c else "-"


async def _send_problem(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = problem_bytes(body)
    hdrs = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(data)).encode())]
    for k, v in (headers or {}).items():
        hdrs.append((k.lower().encode(), v.encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": data})


def _audit_unavailable(instance: str) -> dict:
    return problem_body(
        503,
        "the audit log cannot be written, so no answer is given; retry later / "
        "审计日志暂时无法写入，暂停应答，请稍后重试",
        kind="audit-unavailable",
        instance=instance,
    )


async def _too_many(send, wait: float, instance: str, en: str, zh: str) -> None:
    await _send_problem(
        send,
        429,
        problem_body(429, f"{en}; retry after {wait:.2f} s / {zh}，请稍后重试", kind="rate-limited", instance=instance),
        {"Retry-After": retry_after_header(wait)},
    )


class ServiceMiddleware:
    """Address limit, authentication, audit health, key rate, body limit, headers, access log,
    audit, last-resort 500 (see the module docstring)."""

    def __init__(self, app, service: Service):
        self.app = app
        self.svc = service
        self._templates: list | None = None  # built on first use: the app's routes exist by then
        self._fast: FastRoute | None = None  # the same

    def _fast_route(self, scope) -> FastRoute:
        if self._fast is None:
            self._fast = FastRoute(scope.get("app"))
        return self._fast

    def _route(self, scope) -> str:
        if self._templates is None and scope.get("app") is not None:
            self._templates = route_templates(scope["app"])
        return route_template(scope, self._templates or [])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        svc = self.svc
        call = _Call(self, scope, receive, send)
        path, guarded, state = call.path, call.guarded, call.state
        instance, shown, audit_row = call.instance, call.shown, call.audit_row
        send_tracked, receive_limited = call.send_tracked, call.receive_limited

        try:
            length = _header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
                await _send_problem(
                    send_tracked,
                    413,
                    problem_body(
                        413,
                        f"the request body exceeds {MAX_BODY // 1024} KiB; a batch takes at most 1,000 codes / "
                        f"请求体超过 {MAX_BODY // 1024} KiB（批量查询最多 1000 个代码）",
                        instance=instance(),
                    ),
                )
                return
            if guarded:
                svc.snapshots.notice()
                token = _bearer(scope)
                hit, call.principal = svc.keys.cached(token)
                if call.principal is None:
                    # no valid key (yet): limited per address before the database is asked
                    host = (scope.get("client") or ("-",))[0]
                    wait = svc.limiter.take(f"addr:{host}", svc.anon_rate, svc.anon_burst)
                    if wait > 0:
                        await _too_many(
                            send_tracked,
                            wait,
                            instance(),
                            "too many calls without a valid API key from this address",
                            "来自该地址的无效密钥请求过多",
                        )
                        return
                if not hit and token:  # a database read: off the event loop
                    call.principal = await anyio.to_thread.run_sync(svc.keys.verify, token)
                if call.principal is None:
                    await _send_problem(
                        send_tracked,
                        401,
                        problem_body(
                            401,
                            "a valid API key is required: Authorization: Bearer <key> / 需要有效的 API 密钥",
                            kind="unauthorized",
                            instance=instance(),
                        ),
                        {"WWW-Authenticate": 'Bearer realm="safecredit"'},
                    )
                    return
                principal = state["principal"] = call.principal
                if not svc.audit.accepting():
                    await _send_problem(send_tracked, 503, _audit_unavailable(instance()), {"Retry-After": "5"})
                    return
                wait = svc.limiter.take(principal.key_id, principal.rate_per_second, principal.burst)
                if wait > 0:
                    await _too_many(
                        send_tracked,
                        wait,
                        instance(),
                        f"rate limit of {principal.rate_per_second:g} requests/s (burst {principal.burst}) exceeded",
                        "超过请求速率上限",
                    )
                    return
            code = self._fast_route(scope).code_of(scope, path) if guarded else None
            if code is not None:  # the hot route, without the routing around it (fastpath.py)
                await self._fast(scope, receive_limited, send_tracked, code, call.send_json)
            else:
                await self.app(scope, receive_limited, send_tracked)
        except Exception as exc:  # noqa: BLE001 — a bug: answer 500 without a traceback, log kind and place
            frames = traceback.extract_tb(exc.__traceback__)
            where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
            log.error(
                "internal error on %s %s at %s: %s",
                scope.get("method"),
                instance(),
                where,
                mask_ids_in_text(f"{type(exc).__name__}: {exc}")[:500],
            )
            if not call.started:
                await _send_problem(
                    send_tracked,
                    500,
                    problem_body(
                        500,
                        "internal error; the operator has the details in the server log / 内部错误",
                        kind="internal-error",
                        instance=instance(),
                    ),
                )
        finally:
            ms = (time.perf_counter() - call.t0) * 1000
            if access_log.isEnabledFor(logging.INFO):
                # the record made directly: `Logger.info` would also look up the calling frame
                # (`findCaller`) on every request, for a line whose place is always this one.
                # Made and written here, not by a thread of its own: measured in-process, handing
                # the lines to a thread cost more CPU per call than writing them (the threads
                # take the GIL from each other at every write)
                args = (
                    _client(scope),
                    _method(scope, 20),
                    shown(),
                    call.status,
                    ms,
                    call.principal.key_id if call.principal else "-",
                )
                access_log.handle(
                    access_log.makeRecord(
                        access_log.name,
                        logging.INFO,
                        __file__,
                        0,
                        '%s "%s %s" %d %.1fms key=%s',
                        args,
                        None,
                        extra={MASKED: True},  # every part masked above: the log filter need not scan it again
                    )
                )
            if guarded and not call.audit_done:  # no answer was started (the client went away)
                audit_row(call.status)


#: the headers of a `/v1` JSON answer besides its length (`send_tracked` adds the last two to any)
_JSON_HEADERS = (
    (b"content-type", b"application/json"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
)


class _Call:
    """One request through `ServiceMiddleware`: its state, and the wrapped `send` and `receive`,
    as an object. (As closures that referred to each other they made a reference cycle per request
    that only the garbage collector freed: a generation-0 collection every ~20 requests.)"""

    def __init__(self, mw: ServiceMiddleware, scope, receive, send):
        self.mw, self.scope, self.receive, self.send = mw, scope, receive, send
        self.t0 = time.perf_counter()
        self.started_at = datetime.now(UTC)
        self.path = path = relative_path(scope)
        self.guarded = path.startswith("/v1/") or path == "/v1" or path == "/report"
        self.state = scope.setdefault("state", {})
        self.principal: Principal | None = None
        self.started = False  # the answer's start went out
        self.status = 500
        self.audit_done = False
        self.refused = False  # the answer was replaced by a 503 (its audit row could not be spooled)
        self.received = 0
        self._instance: str | None = None
        self._shown: str | None = None

    def instance(self) -> str:
        """The path as a problem's `instance` shows it: masked only when a problem is answered."""
        if self._instance is None:
            self._instance = mask_path(self.path)
        return self._instance

    def shown(self) -> str:
        """The path and query as logs and the audit show them (masked once per request)."""
        if self._shown is None:
            self._shown = mask_path(self.path, self.scope.get("query_string", b"").decode("latin-1"))
        return self._shown

    def audit_row(self, status: int) -> bool:
        """The call's audit row, spooled once, before its answer goes out."""
        self.audit_done = True
        p, scope, state = self.principal, self.scope, self.state
        return self.mw.svc.audit.record(
            at=self.started_at,
            consumer=p.consumer if p else None,
            key_id=p.key_id if p else None,
            method=_method(scope, 10),
            route=self.mw._route(scope)[:200],
            path=self.shown()[:2000],
            code=state.get("audit_code"),
            status=status,
            version=state.get("version"),
            duration_ms=round((time.perf_counter() - self.t0) * 1000, 2),
        )

    async def send_tracked(self, message) -> None:
        if message["type"] == "http.response.start":
            if self.guarded and not self.audit_done and not self.audit_row(message["status"]):
                # no answer goes out unaudited: a 503 replaces it (the row is counted as dropped)
                await _send_problem(self.send_tracked, 503, _audit_unavailable(self.instance()), {"Retry-After": "5"})
                self.refused = True
                return
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers") or [])
            headers.append((b"x-content-type-options", b"nosniff"))
            if self.path.startswith("/v1/") and not any(k.lower() == b"cache-control" for k, _ in headers):
                headers.append((b"cache-control", b"no-store"))
            message = {**message, "headers": headers}
        elif self.refused:
            return  # the replaced answer's body
        await self.send(message)

    async def send_json(self, body: bytes) -> None:
        """A 200 `application/json` answer (the hot route's, `fastpath.py`): what `send_tracked`
        does with a start message — the audit row first, then the headers this middleware adds —
        with those headers written once here instead of copied and searched."""
        if not self.audit_done and not self.audit_row(200):
            await _send_problem(self.send_tracked, 503, _audit_unavailable(self.instance()), {"Retry-After": "5"})
            return
        self.started = True
        self.status = 200
        headers = [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def receive_limited(self):
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > MAX_BODY:  # a chunked body without a length: stop reading it
                raise BodyTooLarge()
        return message
