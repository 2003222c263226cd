"""The hot route without Starlette's routing: `GET /v1/restrictions/{code}` called straight from
`ServiceMiddleware`.

A restriction answer from the in-memory index costs less than the machinery around it: matching
the path against every route, the exception middleware, FastAPI's request handler and its
dependency solver took as long as the answer itself (issue 11's profile). The middleware
recognises this one route's path and calls the same endpoint FastAPI registered (one
implementation; OpenAPI documents it as before) with a `Request` of the same scope; an exception
becomes the answer the app's own exception handlers give. Every other request goes through the
app as before.
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
        for route in _routes(getattr(app, "routes", ())):
            if getattr(route, "path", None) == PATH and "GET" in (getattr(route, "methods", None) or ()):
                self.route, self.endpoint = route, route.endpoint
                break

    def code_of(self, scope, path: str) -> str | None:
        """The `{code}` of a GET this route answers, else None."""
        if self.endpoint is None or scope.get("method") != "GET" or not path.startswith(PREFIX):
            return None
        code = path[len(PREFIX) :]
        return None if "/" in code or code in _NOT_CODES else code

    async def __call__(self, scope, receive, send, code: str) -> None:
        scope["path_params"] = {"code": code}
        scope["route"] = self.route  # the audit's route template, as after routing
        scope["endpoint"] = self.endpoint
        request = Request(scope, receive, send)
        try:
            response = await self.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # the middleware's last resort: a 500 problem
            response = await handler(request, exc)
        await response(scope, receive, send)

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
