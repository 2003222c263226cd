"""The hot route without Starlette's routing: `GET /v1/restrictions/{code}` called straight from
`ServiceMiddleware`.

A restriction answer from the in-memory index costs less than the machinery around it: matching
the path against every route, the exception middleware, FastAPI's request handler and its
dependency solver took as long as the answer itself (issue 11's profile). The middleware
recognises this one route's path and calls what the endpoint FastAPI registered calls (its
`answer`: one implementation; OpenAPI documents it as before) on the same scope, and sends the
bytes it returns through the middleware (`send_json`: audit row, headers) without a `Request` or
a `Response`; an exception becomes the answer the app's own exception handlers give. Every other
request goes through the app as before.
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.requests import Request
from starlette.routing import Route

PATH = "/v1/restrictions/{code}"
PREFIX = "/v1/restrictions/"
_NOT_CODES = frozenset(("lookup", "batch", ""))  # routes of their own, or no code at all


class FastRoute:
    """The endpoint and route object of `GET /v1/restrictions/{code}`, found in the app's routes
    on first use (`None` when the app has no such route: then nothing is short-cut)."""

    def __init__(self, app: Any):
        self.app = app
        self.route: Route | None = None
        self.endpoint: Callable | None = None
        self.answer: Callable | None = None  # (scope, code) -> the answer's JSON bytes
        for route in _routes(getattr(app, "routes", ())):
            if getattr(route, "path", None) == PATH and "GET" in (getattr(route, "methods", None) or ()):
                self.route, self.endpoint = route, route.endpoint
                self.answer = getattr(route.endpoint, "answer", None)
                break

    def code_of(self, scope, path: str) -> str | None:
        """The `{code}` of a GET this route answers, else None."""
        if self.answer is None or scope.get("method") != "GET" or not path.startswith(PREFIX):
            return None
        code = path[len(PREFIX) :]
        return None if "/" in code or code in _NOT_CODES else code

    async def __call__(self, scope, receive, send, code: str, send_json: Callable) -> None:
        """Answer the GET of `code`: `send_json(body)` sends a 200 answer, `send` anything else."""
        scope["path_params"] = {"code": code}
        scope["route"] = self.route  # the audit's route template, as after routing
        scope["endpoint"] = self.endpoint
        try:
            body = await self.answer(scope, code)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # the middleware's last resort: a 500 problem
            request = Request(scope, receive, send)
            response = await handler(request, exc)
            await response(scope, receive, send)
            return
        await send_json(body)

    def _handler(self, exc: Exception) -> Callable | None:
        handlers = getattr(self.app, "exception_handlers", {})
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


def _routes(routes) -> Any:
    """Every route, also those of included routers (FastAPI keeps an included router as one
    entry holding the original; its routes carry their full path: `service.v1_router`)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield route


class HotRouteFirst:
    """Mixin of the FastAPI app: a `GET /v1/restrictions/…` enters the service middleware
    (`entry_type`) directly, not through Starlette's stack around it (its error middleware, and
    FastAPI's body limit and telemetry): the service middleware already answers every error as a
    problem, caps bodies and keeps no telemetry. Only without a `root_path`, and only once the stack
    is built (the first request builds it): everything else goes the usual way."""

    entry_type: type | None = None
    _entry: Any = None

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and scope.get("path", "").startswith(PREFIX)
            and not scope.get("root_path")
            and not self.root_path
        ):
            entry = self._entry if self._entry is not None else self._find_entry()
            if entry is not None:
                scope["app"] = self  # as Starlette sets it
                return await entry(scope, receive, send)
        await super().__call__(scope, receive, send)

    def _find_entry(self) -> Any:
        m = self.middleware_stack
        while m is not None and not isinstance(m, self.entry_type):
            m = getattr(m, "app", None)
        self._entry = m
        return m
