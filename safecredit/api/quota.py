"""The daily quota of person codes per key (exchange.md §2: default 10,000 per UTC day), one for
every server process of the exchange: counted in the service database (`person_quota_use`).

Consistency (what a server may and may not do):

* **Never more than the quota**, across servers and restarts: a code is only ever spent from quota
  claimed in the database by a conditional UPDATE (`used + n <= limit`), so no two servers can
  both take the last codes and no batch overshoots.
* **The common case from memory**: while at least `LEASE_ROOM` leases are left after it, a claim
  takes `lease` codes more than its call needs; the key's next person codes on this server are
  spent from that lease (a lock and a subtraction: no database statement, no thread hop). The
  quota's last `LEASE_ROOM * lease` codes are claimed call by call, exactly as without leases.
* **Given back, not lost**: a lease unused for `idle_return` seconds, and every lease at shutdown,
  is subtracted from the database's count again. Until then another server may refuse a call up to
  the leases this one holds (at most `lease` codes per key, for at most `idle_return` s); a server
  that crashes leaves its unspent lease counted as used (the quota errs towards refusing, never
  towards answering more).
* The call whose claim makes the count reach the quota raises the alert, once per key and day
  across all servers (a lease never reaches it: the last codes are claimed exactly).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from .models import PersonQuotaUse
from .periodic import Periodic

log = logging.getLogger("safecredit.api")

#: person codes claimed beyond a call's own, spent by the key's next calls on this server
LEASE = 64
#: a lease is claimed only while this many leases are left after the claim
LEASE_ROOM = 8
#: seconds a lease may sit unspent before it goes back to the database
IDLE_RETURN = 5.0


class DailyQuota:
    def __init__(
        self,
        limit: int,
        engine: Engine,
        on_reached: Callable[[str, int], None] | None = None,
        *,
        lease: int = LEASE,
        idle_return: float = IDLE_RETURN,
    ) -> None:
        self.limit = limit
        self.engine = engine
        self.on_reached = on_reached
        self.lease = lease
        self.idle_return = idle_return
        self._table = PersonQuotaUse.__table__
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._lock = threading.Lock()  # guards _held
        self._held: dict[str, list] = {}  # key -> [day, codes held, monotonic time of last spend]
        self._claims: dict[str, threading.Lock] = {}  # one claim per key at a time on this server
        self._near: set[tuple[str, str]] = set()  # (key, day) with too little left for a lease
        self._cleaned: str | None = None  # the day whose older counts were deleted
        self._returner = Periodic("quota-leases", idle_return / 2, lambda: self.give_back(idle_return))

    # -- spending --------------------------------------------------------------------------
    def spend_held(self, key: str, n: int, day: str) -> bool:
        """Spend `n` from this server's lease of `key` (no database): True when it covered them."""
        if n <= 0:
            return True
        with self._lock:
            h = self._held.get(key)
            if h is None or h[0] != day or h[1] < n:
                return False
            h[1] -= n
            h[2] = time.monotonic()
        return True

    def spend(self, key: str, n: int, day: str) -> bool:
        """Spend `n` person codes of `key` on `day`: False when they would take it past the quota.
        From the lease when it covers them, else by a claim (raises SQLAlchemyError when the
        database is away)."""
        if self.spend_held(key, n, day):
            return True
        with self._lock:
            claim_lock = self._claims.setdefault(key, threading.Lock())
        with claim_lock:
            if self.spend_held(key, n, day):  # another request of this key claimed meanwhile
                return True
            with self._lock:  # what is left of the lease goes towards this call
                h = self._held.get(key)
                have = h[1] if h is not None and h[0] == day else 0
                self._held[key] = [day, 0, time.monotonic()]
            try:
                granted = self._claim(key, day, n - have)
            except BaseException:
                self._put_back(key, day, have)
                raise
            if granted is None:
                self._put_back(key, day, have)
                return False
            self._put_back(key, day, granted - (n - have))
            return True

    def _put_back(self, key: str, day: str, n: int) -> None:
        with self._lock:
            h = self._held.get(key)
            if h is not None and h[0] == day:
                h[1] += n

    def _claim(self, key: str, day: str, need: int) -> int | None:
        """Claim `need` codes (and a lease when there is room) in the database: the codes granted,
        or None when `need` would take the key past its quota."""
        t = self._table
        mine = (t.c.key_id == key, t.c.day == day)
        granted = None
        with self.engine.begin() as con:
            con.execute(self._insert(t).values(key_id=key, day=day, used=0).on_conflict_do_nothing())
            if (key, day) not in self._near and self.lease > 0:
                room = need + self.lease * (LEASE_ROOM + 1)
                stmt = update(t).where(*mine, t.c.used + room <= self.limit).values(used=t.c.used + need + self.lease)
                used = con.execute(stmt.returning(t.c.used)).scalar()
                if used is not None:
                    granted = need + self.lease
                else:
                    self._near.add((key, day))
            if granted is None:
                stmt = update(t).where(*mine, t.c.used + need <= self.limit).values(used=t.c.used + need)
                used = con.execute(stmt.returning(t.c.used)).scalar()
                granted = need if used is not None else None
            if self._cleaned != day:  # yesterday's counts are done (once a day per server)
                con.execute(delete(t).where(t.c.day < day))
        if self._cleaned != day:
            self._cleaned = day
            self._near = {kd for kd in self._near if kd[1] == day}
        if granted is not None and used >= self.limit > used - granted and self.on_reached is not None:
            self.on_reached(key, self.limit)
        return granted

    # -- giving back -----------------------------------------------------------------------
    def give_back(self, idle_for: float = 0.0) -> int:
        """Return to the database the leases unspent for `idle_for` seconds (0: all); the codes
        returned. A lease that cannot be returned now (database away) is kept, and tried again."""
        now = time.monotonic()
        taken: list[tuple[str, str, int]] = []
        with self._lock:
            for key, h in self._held.items():
                if h[1] > 0 and now - h[2] >= idle_for:
                    taken.append((key, h[0], h[1]))
                    h[1] = 0
        returned = 0
        t = self._table
        for key, day, n in taken:
            try:
                with self.engine.begin() as con:
                    con.execute(
                        update(t).where(t.c.key_id == key, t.c.day == day, t.c.used >= n).values(used=t.c.used - n)
                    )
                returned += n
            except SQLAlchemyError as exc:
                log.warning("a person-code lease could not be given back (%s); kept", type(exc).__name__)
                self._put_back(key, day, n)
        return returned

    def start(self) -> None:
        """Give back idle leases in the background (every `idle_return` / 2 s)."""
        self._returner.start()

    def stop(self) -> None:
        """Stop the background returns and give back every lease."""
        self._returner.stop()
        self.give_back()
