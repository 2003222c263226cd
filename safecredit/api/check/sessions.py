"""Server-side sessions of the check page: a random id in the cookie, everything else here.

A session holds the key's id and sha256 (never the key), the consumer, a CSRF token and the
checks made in it (so the report can be printed, downloaded as PDF or .xlsx). It ends after
`idle_seconds` without a request (15 minutes by default; `SAFECREDIT_CHECK_IDLE_SECONDS`), on
sign-out, and — checked by the routes on every request — when its key is revoked.

Sessions live in the server process's memory: `safecredit serve` runs one process, and a
restart signs everyone out (a check is in the audit log whatever happens to its session).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_IDLE_SECONDS = 15 * 60
MAX_SESSIONS = 10_000  # anonymous ones (a sign-in form shown) are evicted first when full
CHECKS_KEPT = 20  # per session: the reports a user can still open, print or download


def idle_seconds_from_env() -> float:
    value = os.environ.get("SAFECREDIT_CHECK_IDLE_SECONDS")
    try:
        return float(value) if value else DEFAULT_IDLE_SECONDS
    except ValueError:
        return DEFAULT_IDLE_SECONDS


@dataclass
class CheckSession:
    sid: str
    csrf: str
    last_seen: float
    key_id: str | None = None
    key_digest: str | None = None  # sha256 of the key, as KeyService stores it
    consumer: str | None = None
    checks: OrderedDict[str, Any] = field(default_factory=OrderedDict)

    @property
    def signed_in(self) -> bool:
        return self.key_id is not None

    def keep(self, check_id: str, check: Any) -> None:
        self.checks[check_id] = check
        while len(self.checks) > CHECKS_KEPT:
            self.checks.popitem(last=False)


class CheckSessions:
    """Thread-safe store of sessions; `clock` is replaceable so a test can let time pass."""

    def __init__(self, idle_seconds: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.idle_seconds = idle_seconds_from_env() if idle_seconds is None else idle_seconds
        self.clock = clock
        self._sessions: OrderedDict[str, CheckSession] = OrderedDict()  # least recently seen first
        self._lock = threading.Lock()

    def new(self) -> CheckSession:
        s = CheckSession(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock())
        with self._lock:
            self._make_room()
            self._sessions[s.sid] = s
        return s

    def get(self, sid: str | None) -> tuple[CheckSession | None, bool]:
        """(the live session, whether a session of that id just expired); touches it."""
        if not sid:
            return None, False
        now = self.clock()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None, False
            if now - s.last_seen > self.idle_seconds:
                del self._sessions[sid]
                return None, s.signed_in
            s.last_seen = now
            self._sessions.move_to_end(sid)
            return s, False

    def sign_in(self, old: CheckSession, key_id: str, key_digest: str, consumer: str) -> CheckSession:
        """A new session id and CSRF token at sign-in (an id planted before it is worth nothing)."""
        self.end(old.sid)
        s = self.new()
        s.key_id, s.key_digest, s.consumer = key_id, key_digest, consumer
        return s

    def end(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def _make_room(self) -> None:
        if len(self._sessions) < MAX_SESSIONS:
            return
        now = self.clock()
        for sid in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_seconds]:
            del self._sessions[sid]
        if len(self._sessions) >= MAX_SESSIONS:
            victim = next((k for k, s in self._sessions.items() if not s.signed_in), None)
            self._sessions.pop(victim or next(iter(self._sessions)))
