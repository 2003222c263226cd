"""API keys: creation (shown once), verification, revocation, rotation; the service database.

A key is `sck_<key_id>_<secret>`: `key_id` (10 hex characters) is public — it names the key in
`keys list`, the audit log and `keys revoke` — and the secret is 256 random bits
(`secrets.token_urlsafe(32)`). Only sha256(key) is stored. A plain, fast hash is enough here and
deliberate: password-hashing functions (bcrypt, scrypt, argon2) exist to slow down guessing of
low-entropy secrets; a 256-bit random key cannot be guessed from its hash at any hash speed, and a
fast hash keeps verification off the request's critical path. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, create_engine, select

from safecredit.codes import is_valid_uscc, normalise_code
from safecredit.errors import ConfigError, UserError

from .models import ApiKey, AuditLog, Consumer, KeyAuthority, utcnow  # noqa: F401  (AuditLog: create_all)

# candidates:read reads the listing_candidates feed's files (exchange.md §2); GET /v1/candidates answers
# only the deciding authority its key is bound to (`keys create --authority CODE`)
SCOPES = ("restrictions:read", "lists:read", "credit:read", "premium:read", "candidates:read")
KEY_PREFIX = "sck"
DEFAULT_RATE = 100.0  # requests per second per key (exchange.md §2)
DEFAULT_BURST = 1000  # exchange.md §2: bursts of 1,000
#: how long a verified key keeps being accepted from the cache while the service database cannot be
#: read (an outage: the keys cannot be revoked then either); after that its calls verify again
MAX_STALE_SECONDS = 600.0

log = logging.getLogger("safecredit.api")


def db_url_for(home: Path | str, db_url: str | None = None) -> str:
    """`--db-url` > `SAFECREDIT_DB_URL` > SQLite `<home>/service.db` (psycopg 3 for PostgreSQL)."""
    url = db_url or os.environ.get("SAFECREDIT_DB_URL") or f"sqlite:///{Path(home) / 'service.db'}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url[len(plain) :]
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # key hashes and the audit (who asked about whom): owner-only. SQLite gives its -wal and
            # -shm files the database file's mode, so creating it 0600 first covers them too.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_con, _record):  # readers and the CLI's writes do not block each other
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    SQLModel.metadata.create_all(engine)
    return engine


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(value: str | list[str]) -> list[str]:
    items = value if isinstance(value, list) else str(value).replace(" ", ",").split(",")
    scopes = sorted({s.strip() for s in items if s.strip()})
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ConfigError(
            f"未知或缺少权限范围：{', '.join(bad) or '（空）'}；可用：{', '.join(SCOPES)}",
            f"unknown or missing scope(s): {', '.join(bad) or '(none)'}; known: {', '.join(SCOPES)}",
        )
    return scopes


@dataclass(frozen=True)
class Principal:
    """A verified key: who calls, with which scopes and limits."""

    key_id: str
    consumer: str
    scopes: frozenset[str]
    rate_per_second: float
    burst: int


def _key_info(k: ApiKey, c: Consumer) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "consumer": c.name,
        "scopes": k.scopes.split(","),
        "created_at": k.created_at.isoformat() if k.created_at else None,
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        "replaced_by": k.replaced_by,
        "rate_per_second": c.rate_per_second if c.rate_per_second is not None else DEFAULT_RATE,
        "burst": c.burst if c.burst is not None else DEFAULT_BURST,
    }


class KeyService:
    def __init__(self, engine: Engine, *, cache_seconds: float = 1.0):
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        self._refreshing = False  # a background revalidation of the cached keys is under way
        self.refresh_failures = 0

    # -- management (CLI) ------------------------------------------------------------------
    def _new_key(self, session: Session, consumer: Consumer, scopes: list[str]) -> tuple[ApiKey, str]:
        key_id = secrets.token_hex(5)
        key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        row = ApiKey(key_id=key_id, consumer_id=consumer.id, key_hash=hash_key(key), scopes=",".join(scopes))
        session.add(row)
        return row, key

    def create(
        self,
        consumer: str,
        scopes: str | list[str],
        *,
        rate_per_second: float | None = None,
        burst: int | None = None,
        authority: str | None = None,
    ) -> tuple[dict, str]:
        """A new key for `consumer` (created if new; its limits updated when given); `authority`, the
        USCC of the deciding authority whose candidates queue a `candidates:read` key reads."""
        name = (consumer or "").strip()
        if not name or len(name) > 200:
            raise ConfigError("使用方名称不能为空且不超过200字符。", "The consumer name must be 1–200 characters.")
        wanted = parse_scopes(scopes)
        self._check_limits(rate_per_second, burst)
        if authority is not None and not is_valid_uscc(normalise_code(authority)):
            raise ConfigError(
                f"--authority 须为决定机关的统一社会信用代码：{authority!r} 不是有效代码。",
                f"--authority must be the deciding authority's unified social credit code: {authority!r} is not valid.",
            )
        with Session(self.engine) as s:
            c = s.exec(select(Consumer).where(Consumer.name == name)).first()
            if c is None:
                c = Consumer(name=name)
                s.add(c)
            if rate_per_second is not None:
                c.rate_per_second = float(rate_per_second)
            if burst is not None:
                c.burst = int(burst)
            s.flush()
            row, key = self._new_key(s, c, wanted)
            if authority is not None:
                s.add(KeyAuthority(key_id=row.key_id, authority_code=normalise_code(authority)))
            s.commit()
            s.refresh(row)
            s.refresh(c)
            return _key_info(row, c), key

    @staticmethod
    def _check_limits(rate: float | None, burst: int | None) -> None:
        if rate is not None and not rate > 0:
            raise ConfigError("速率上限必须大于0。", "The rate limit must be greater than 0.")
        if burst is not None and burst < 1:
            raise ConfigError("突发上限至少为1。", "The burst must be at least 1.")

    def list(self) -> list[dict]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(ApiKey, Consumer)
                .where(ApiKey.consumer_id == Consumer.id)
                .order_by(Consumer.name, ApiKey.created_at, ApiKey.key_id)
            ).all()
            return [_key_info(k, c) for k, c in rows]

    def _get(self, s: Session, key_id: str) -> tuple[ApiKey, Consumer]:
        row = s.exec(
            select(ApiKey, Consumer).where(ApiKey.consumer_id == Consumer.id).where(ApiKey.key_id == key_id.strip())
        ).first()
        if row is None:
            raise UserError(
                f"没有编号为 {key_id} 的密钥（见 `safecredit keys list`）。",
                f"No key with id {key_id} (see `safecredit keys list`).",
                exit_code=2,
            )
        return row

    def revoke(self, key_id: str) -> dict:
        with Session(self.engine) as s:
            k, c = self._get(s, key_id)
            if k.revoked_at is None:
                k.revoked_at = utcnow()
                s.add(k)
                s.commit()
                s.refresh(k)
            self._forget()
            return _key_info(k, c)

    def rotate(self, key_id: str) -> tuple[dict, str]:
        """A new key with the same consumer and scopes; the old one is revoked."""
        with Session(self.engine) as s:
            old, c = self._get(s, key_id)
            if old.revoked_at is not None:
                raise UserError(
                    f"密钥 {key_id} 已吊销，无法轮换；请用 `keys create` 新建。",
                    f"Key {key_id} is revoked and cannot be rotated; create a new one with `keys create`.",
                    exit_code=2,
                )
            new, key = self._new_key(s, c, old.scopes.split(","))
            old.revoked_at = utcnow()
            old.replaced_by = new.key_id
            s.add(old)
            s.commit()
            s.refresh(new)
            self._forget()
            return _key_info(new, c), key

    # -- verification (server) -------------------------------------------------------------
    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def cached(self, token: str | None) -> tuple[bool, Principal | None]:
        """(True, answer) when the key is answered from the cache (no database read).

        A valid key whose entry is older than `cache_seconds` is still answered from it while one
        background thread revalidates every cached key in one query (`refresh`): no request waits
        for the database, a burst of calls at the expiry does not make a burst of lookups, and a
        revocation is seen within `cache_seconds` plus that query. While the database cannot be
        read the last answer stands, for at most MAX_STALE_SECONDS (a key cannot be revoked then
        either). Unknown and invalid keys are never answered stale."""
        if not token:
            return True, None
        if len(token) > 200:
            return False, None
        digest = hash_key(token)
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None:
            return False, None
        age = time.monotonic() - hit[0]
        if age < self.cache_seconds:
            return True, hit[1]
        if hit[1] is None or self.cache_seconds <= 0 or age > self.cache_seconds + MAX_STALE_SECONDS:
            return False, None
        self._revalidate()
        return True, hit[1]

    def _revalidate(self) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self.refresh, name="key-refresh", daemon=True).start()

    def refresh(self) -> bool:
        """Verify every cached valid key again with one query (revoked, deleted, new limits);
        False when the database cannot be read (the entries stay as they were)."""
        try:
            with self._lock:
                digests = {d: p.key_id for d, (_, p) in self._cache.items() if p is not None}
            try:
                found = self._lookup_many(sorted(set(digests.values())))
            except SQLAlchemyError as exc:
                self.refresh_failures += 1
                if self.refresh_failures in (1, 10) or self.refresh_failures % 100 == 0:
                    log.error(
                        "API keys cannot be verified again (%s): the cached ones stay valid for at most %d s",
                        type(exc).__name__,
                        MAX_STALE_SECONDS,
                    )
                return False
            self.refresh_failures = 0
            now = time.monotonic()
            with self._lock:
                for digest, key_id in digests.items():
                    row = found.get(key_id)
                    valid = row is not None and hmac.compare_digest(row[0], digest)
                    self._cache[digest] = (now, row[1] if valid else None)
            return True
        finally:
            with self._lock:
                self._refreshing = False

    def verify(self, token: str | None) -> Principal | None:
        """The principal of a presented key, or None (unknown, malformed or revoked).

        Answers are cached for `cache_seconds` (default 1 s) so a burst costs one database read;
        a revocation from another process therefore takes effect within that time."""
        if not token or len(token) > 200:
            return None
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
            return None
        return self.verify_digest(parts[1], hash_key(token))

    def verify_digest(self, key_id: str, digest: str) -> Principal | None:
        """`verify` for a key known by its id and sha256 (the check page's session keeps only
        these, never the key): same cache, so a revocation is seen within `cache_seconds`."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        principal = self._lookup(key_id, digest)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        return principal

    def _lookup(self, key_id: str, digest: str) -> Principal | None:
        row = self._lookup_many([key_id]).get(key_id)
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return row[1]

    def _lookup_many(self, key_ids: list[str]) -> dict[str, tuple[str, Principal | None]]:
        """key_id → (stored hash, principal; None when revoked) of the keys that exist."""
        if not key_ids:
            return {}
        with Session(self.engine) as s:
            rows = s.exec(
                select(ApiKey, Consumer).where(ApiKey.consumer_id == Consumer.id).where(ApiKey.key_id.in_(key_ids))
            ).all()
        return {
            k.key_id: (
                k.key_hash,
                None
                if k.revoked_at is not None
                else Principal(
                    k.key_id,
                    c.name,
                    frozenset(k.scopes.split(",")),
                    float(c.rate_per_second) if c.rate_per_second is not None else DEFAULT_RATE,
                    int(c.burst) if c.burst is not None else DEFAULT_BURST,
                ),
            )
            for k, c in rows
        }


def key_service(home: Path | str, db_url: str | None = None, **kw: Any) -> KeyService:
    return KeyService(make_engine(db_url_for(home, db_url)), **kw)


def format_when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


def authority_of(engine, key_id: str) -> str | None:
    """The deciding authority a key is bound to (None: not bound)."""
    with Session(engine) as s:
        row = s.get(KeyAuthority, key_id)
        return row.authority_code if row else None
