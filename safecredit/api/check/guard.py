"""Who is asking the check page, and whether to believe the request.

`visit` finds the server-side session by its cookie and, when signed in, verifies the session's
key again on every request (`KeyService.verify_digest`: cached for at most a second, so a revoked
key ends the session within a second). `foreign` tells a request sent by another site's page,
`token_matches` a form carrying the session's CSRF token. `harden` and `set_cookie` put the
headers every answer of the page carries.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from safecredit.api.keys import Principal

from .render import content_security_policy
from .sessions import CheckSession, CheckSessions

COOKIE = "sc_check"
SCOPE = "restrictions:read"


def sessions_of(app) -> CheckSessions:
    """The app's session store, made on first use (a test may put its own there first)."""
    store = getattr(app.state, "check_sessions", None)
    if store is None:
        store = app.state.check_sessions = CheckSessions()
    return store


def base_path(request: Request) -> str:
    return request.scope.get("root_path", "") + "/check"


@dataclass
class Visit:
    session: CheckSession | None
    principal: Principal | None = None
    expired: bool = False  # a signed-in session of this cookie ended by idle time
    revoked: bool = False  # … or because its key is no longer valid


def visit(request: Request) -> Visit:
    store = sessions_of(request.app)
    s, expired = store.get(request.cookies.get(COOKIE))
    if s is None or not s.signed_in:
        return Visit(s, expired=expired)
    p = request.app.state.service.keys.verify_digest(s.key_id, s.key_digest)
    if p is None or SCOPE not in p.scopes:
        store.end(s.sid)
        return Visit(None, revoked=True)
    return Visit(s, p)


def foreign(request: Request) -> bool:
    """A request sent by a page of another origin (`Origin`, `Sec-Fetch-Site`)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return (origin is not None and origin != own) or request.headers.get("sec-fetch-site") == "cross-site"


def token_matches(session: CheckSession, token: str) -> bool:
    return bool(token) and hmac.compare_digest(token, session.csrf)


def harden(resp: Response, nonce: str = "none") -> None:
    resp.headers["Content-Security-Policy"] = content_security_policy(nonce)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on a POST, which
    # the cross-site check cannot tell from a sandboxed foreign page
    resp.headers["Referrer-Policy"] = "same-origin"


def set_cookie(resp: Response, request: Request, sid: str) -> None:
    resp.set_cookie(
        COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https", path=base_path(request)
    )
