"""What a call costs (exchange.md §2): one rate token per code asked, and person codes against the
key's daily quota (in the service database: one quota for every server; `quota.py` says how a
server spends most of it from memory)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import anyio
from sqlalchemy.exc import SQLAlchemyError

from safecredit.codes import is_valid_uscc, normalise_code

from .keys import Principal
from .problems import ApiProblem
from .ratelimit import retry_after_header
from .service import Reader, Service
from .subjects import MAX_CODE_LENGTH, Subject

log = logging.getLogger("safecredit.api")


DEFAULT_PERSON_QUOTA = 10_000  # person codes per key per day (exchange.md §2)


def quota_alert(key_id: str, limit: int) -> None:
    log.warning(
        "ALERT: key %s reached its daily quota of %d person codes / 密钥 %s 已达到每日个人代码查询配额 %d",
        key_id,
        limit,
        key_id,
        limit,
    )


def charge_codes(svc: Service, p: Principal, codes: list[str], subject_type: str | None) -> None:
    """One rate token per code asked (the middleware took the first) and the key's daily quota of
    person codes: without this a 1,000-code batch cost one token, and a key could test ~100k
    person codes per second (issue 11). Reads the database when persons are asked beyond this
    server's lease of the quota (`quota.py`)."""
    charge_rate(svc, p, len(codes))
    spend_person_quota(svc, p, person_count(codes, subject_type))


async def charge(svc: Service, p: Principal, codes: list[str], subject_type: str | None) -> None:
    """`charge_codes` for the event loop (`spend_persons`)."""
    charge_rate(svc, p, len(codes))
    await spend_persons(svc, p, person_count(codes, subject_type))


def charge_rate(svc: Service, p: Principal, n: int) -> None:
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


def person_count(codes: list[str], subject_type: str | None) -> int:
    if subject_type == "person":
        return len(codes)
    if subject_type == "unit":
        return 0
    return sum(1 for c in codes if not is_valid_uscc(normalise_code(str(c))[:MAX_CODE_LENGTH]))


async def spend_persons(svc: Service, p: Principal, persons: int) -> None:
    """`spend_person_quota` on the event loop: from this server's lease when it covers the call
    (memory only), else the claim's database statements in a worker thread."""
    if persons and not svc.quota.spend_held(p.key_id, persons, datetime.now(timezone.utc).date().isoformat()):
        await anyio.to_thread.run_sync(spend_person_quota, svc, p, persons)


def spend_person_quota(svc: Service, p: Principal, persons: int) -> None:
    now = datetime.now(timezone.utc)
    try:
        allowed = svc.quota.spend(p.key_id, persons, now.date().isoformat())
    except SQLAlchemyError as exc:
        log.error("the person-code quota cannot be read (%s): person lookups answer 503", type(exc).__name__)
        raise ApiProblem(
            503,
            "the daily quota of person codes cannot be checked now (service database unavailable); retry later",
            "暂时无法核对个人代码每日查询配额（服务数据库不可用），请稍后重试",
            kind="quota-unavailable",
            headers={"Retry-After": "5"},
        ) from None
    if not allowed:
        tomorrow = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        raise ApiProblem(
            429,
            f"this key's daily quota of {svc.quota.limit} person codes is used up "
            f"(this call asks about {persons}); it renews at 00:00 UTC",
            f"该密钥今日个人代码查询配额（{svc.quota.limit}）已用尽，UTC 零点恢复",
            kind="quota-exhausted",
            headers={"Retry-After": retry_after_header((tomorrow - now).total_seconds())},
        )


async def charge_resolved(r: Reader, resolved: list, subject_type: str | None) -> None:
    """`charge` for codes already resolved: persons (and codes that are no USCC) from the
    resolution, not from validating every code again."""
    charge_rate(r.svc, r.principal, len(resolved))
    if subject_type == "unit":
        return
    persons = sum(1 for s in resolved if not (isinstance(s, Subject) and s.subject_type == "unit"))
    await spend_persons(r.svc, r.principal, persons)
