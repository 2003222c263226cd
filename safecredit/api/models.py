"""Service tables (SQLModel): consumers, their API keys (hashed) and the audit log.

SQLite `<home>/service.db` by default, PostgreSQL by URL (`SAFECREDIT_DB_URL` / `--db-url`,
psycopg 3: `postgresql+psycopg://…`). Tables are created on first use (`create_all`).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Consumer(SQLModel, table=True):
    """An organisation that pulls from the exchange (an approval office, a platform, an insurer)."""

    __tablename__ = "consumers"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=200)
    # per-consumer rate limit; NULL = the service default (100 requests/s, burst 1,000)
    rate_per_second: float | None = None
    burst: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ApiKey(SQLModel, table=True):
    """One key of a consumer. Only the sha256 of the key is stored; `key_id` is its public prefix."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(index=True, unique=True, max_length=32)
    consumer_id: int = Field(foreign_key="consumers.id", index=True)
    key_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=200)  # comma-separated, sorted
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    replaced_by: str | None = Field(default=None, max_length=32)  # set by rotate


class KeyAuthority(SQLModel, table=True):
    """The deciding authority a `candidates:read` key is bound to (exchange.md §2): its own table, so
    a service database made before it gains it by `create_all`."""

    __tablename__ = "key_authorities"

    key_id: str = Field(primary_key=True, max_length=32)
    authority_code: str = Field(max_length=18, index=True)


class AuditLog(SQLModel, table=True):
    """Every /v1 call: who, which route, which code (persons masked), when, answer version, status."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    consumer: str | None = Field(default=None, max_length=200, index=True)
    key_id: str | None = Field(default=None, max_length=32)
    method: str = Field(max_length=10)
    route: str = Field(max_length=200)
    path: str = Field(sa_column=Column(Text, nullable=False))  # masked
    code: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # masked
    status: int
    version: str | None = Field(default=None, max_length=40)
    duration_ms: float = 0.0


class PersonQuotaUse(SQLModel, table=True):
    """Person codes a key asked about on a UTC day (exchange.md §2: the daily quota). Kept in the
    service database, so every server process of the exchange counts against the same quota."""

    __tablename__ = "person_quota_use"

    key_id: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD (UTC)
    used: int = 0
