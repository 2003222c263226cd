"""HTTP client for one department (department-feeds.md §1).

One `requests.Session` per department with connect/read timeouts. Transient trouble — 5xx,
timeouts, dropped connections, bodies cut short, undecodable JSON — is retried with exponential
backoff and jitter; `429` waits `Retry-After`. Permanent answers (400, 401, 404) are raised at
once with a message naming the department and dataset; `410` tells the caller to restart paging.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import orjson
import requests
import urllib3

from safecredit.config import Department

TRANSIENT_STATUS = {500, 502, 503, 504}


class SourceError(Exception):
    """A department answered something we cannot use; not worth retrying."""

    def __init__(self, dept: str, what: str, zh: str, en: str, status: int | None = None):
        super().__init__(f"[{dept}] {what}: {en}")
        self.dept, self.what, self.zh, self.en, self.status = dept, what, zh, en, status


class SourceUnavailable(SourceError):
    """Retries exhausted: the department is down (or stalled) for now."""


class CursorExpired(Exception):
    """`410`: the cursor expired; restart from `updated_since`."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_base: float = 0.5  # seconds; doubled per attempt
    backoff_max: float = 30.0
    max_retry_after: float = 120.0  # never sleep longer than this on a 429
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        # "full jitter" keeps many clients from retrying in lock step
        return min(self.backoff_max, self.backoff_base * (2**attempt)) * (0.5 + rng.random() / 2)


@dataclass
class Page:
    items: list[dict]
    next_cursor: str | None
    server_time: str | None
    schema_version: str | None
    body: bytes = b""  # as received: the landing keeps it instead of re-serialising the items


@dataclass
class CsvDay:
    day: str
    content: bytes
    charset: str
    record_count: int | None


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    errors: list[str] = field(default_factory=list)


class DepartmentClient:
    def __init__(
        self,
        dept: Department,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        seed: int = 0,
        gate: threading.Semaphore | None = None,
    ):
        self.dept = dept
        # shared by every client of this department in a run: at most N requests in flight to it
        # (politeness, policy `ingest.department_requests_in_flight`); held only while a request
        # is on the wire, never while waiting out a 429 or a backoff. None: no bound of its own
        self.gate = gate if gate is not None else contextlib.nullcontext()
        self.retry = retry or RetryPolicy(**{k: v for k, v in dept.options.get("retry", {}).items()})
        self.sleep = sleep
        self.rng = random.Random(f"{seed}:{dept.id}")
        self.stats = ClientStats()
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {dept.token}",
                "User-Agent": "safecredit-exchange/0.1",
                "Accept-Encoding": "identity",
            }
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> DepartmentClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- low level -------------------------------------------------------------------------
    def _get(self, path: str, params: dict | None, what: str, parse: Callable[[requests.Response], Any]) -> Any:
        url = f"{self.dept.base_url}{path}"
        last = "no attempt"
        for attempt in range(self.retry.max_attempts):
            if attempt:
                self.stats.retries += 1
            self.stats.requests += 1
            try:
                with self.gate:
                    resp = self.session.get(
                        url, params=params, timeout=(self.retry.connect_timeout, self.retry.read_timeout), stream=True
                    )
                    body = _read_body(resp)  # reading here surfaces bodies cut short
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                self.sleep(self.retry.backoff(attempt, self.rng))
                continue
            status = resp.status_code
            if status == 200:
                try:
                    return parse(resp)
                except (ValueError, UnicodeDecodeError) as exc:  # truncated/garbled body
                    last = f"unreadable body ({len(body)} bytes): {exc}"
                    self.sleep(self.retry.backoff(attempt, self.rng))
                    continue
            if status == 429:
                self.stats.throttled += 1
                wait = _retry_after(resp.headers.get("Retry-After"))
                wait = self.retry.backoff(attempt, self.rng) if wait is None else wait
                last = f"429 Too Many Requests (Retry-After {wait:.1f}s)"
                self.sleep(min(wait, self.retry.max_retry_after))
                continue
            if status in TRANSIENT_STATUS:
                last = f"HTTP {status}"
                self.sleep(self.retry.backoff(attempt, self.rng))
                continue
            if status == 410:
                raise CursorExpired(what)
            detail = _detail(resp)
            if status == 401:
                raise SourceError(
                    self.dept.id,
                    what,
                    f"部门 {self.dept.id} 拒绝了令牌（401）。请检查数据源配置中的 token。",
                    f"department {self.dept.id} rejected the token (401); check its token in the sources file",
                    status,
                )
            if status == 404:
                raise SourceError(
                    self.dept.id,
                    what,
                    f"部门 {self.dept.id} 不提供 {what}（404）{detail}",
                    f"department {self.dept.id} does not serve {what} (404) {detail}",
                    status,
                )
            raise SourceError(
                self.dept.id,
                what,
                f"部门 {self.dept.id} 返回 HTTP {status}：{detail}",
                f"department {self.dept.id} answered HTTP {status}: {detail}",
                status,
            )
        self.stats.errors.append(f"{what}: {last}")
        raise SourceUnavailable(
            self.dept.id,
            what,
            f"部门 {self.dept.id} 在 {self.retry.max_attempts} 次尝试后仍不可用（{last}），本次跳过。",
            f"department {self.dept.id} still unavailable after {self.retry.max_attempts} attempts ({last}); "
            "skipped this run",
        )

    # -- protocol ----------------------------------------------------------------------------
    def catalogue(self) -> dict:
        return self._get("/datasets", None, "catalogue", lambda r: r.json())

    def records_page(self, dataset: str, *, updated_since: str | None, cursor: str | None, limit: int) -> Page:
        params: dict[str, Any] = {"limit": limit}
        if updated_since:
            params["updated_since"] = updated_since
        if cursor:
            params["cursor"] = cursor

        def parse(resp: requests.Response) -> Page:
            doc = _page_document(resp.content)
            if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
                raise ValueError("page without an items list")
            return Page(
                doc["items"], doc.get("next_cursor"), doc.get("server_time"), doc.get("schema_version"), resp.content
            )

        return self._get(f"/datasets/{dataset}/records", params, dataset, parse)

    def iter_pages(
        self,
        dataset: str,
        *,
        updated_since: str | None,
        limit: int = 1000,
        resume_from: Callable[[], str | None] | None = None,
    ) -> Iterator[Page]:
        """Pages until `next_cursor` is null. On `410` restart from the newest `updated_at`
        already seen (inclusive, via `resume_from`) so work done is not repeated; the caller
        deduplicates the overlap."""
        cursor: str | None = None
        since = updated_since
        restarts = 0
        while True:
            try:
                page = self.records_page(dataset, updated_since=since, cursor=cursor, limit=limit)
            except CursorExpired:
                restarts += 1
                if restarts > 20:
                    raise SourceUnavailable(
                        self.dept.id,
                        dataset,
                        "游标反复过期，放弃本次拉取。",
                        "cursors keep expiring; giving up this fetch",
                    ) from None
                cursor = None
                since = (resume_from() if resume_from else None) or updated_since
                continue
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def csv_day(self, dataset: str, day: str) -> CsvDay:
        def parse(resp: requests.Response) -> CsvDay:
            charset = resp.headers.get("Content-Type", "")
            cs = "utf-8"
            for part in charset.split(";"):
                part = part.strip()
                if part.lower().startswith("charset="):
                    cs = part.split("=", 1)[1].strip().strip('"')
            count = resp.headers.get("X-Record-Count")
            content = resp.content
            content.decode(_codec(cs))  # undecodable → ValueError → retried, then reported
            return CsvDay(day, content, cs, int(count) if count and count.isdigit() else None)

        return self._get(f"/datasets/{dataset}/export.csv", {"date": day}, f"{dataset} {day}", parse)


def _read_body(resp: requests.Response) -> bytes:
    """The whole body in one read, kept as the response's `content`. requests' own `.content`
    reads it in 10 KiB chunks, each a trip through urllib3's generator and error handling: a third
    of the client's CPU on a page of 1,000 records. Errors are mapped as requests maps them, so a
    body cut short is retried as before (http.client checks Content-Length on a whole read)."""
    try:
        body = resp.raw.read(decode_content=True)
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ConnectionError(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    resp._content, resp._content_consumed = body, True
    return body


def _page_document(body: bytes) -> Any:
    """A page body parsed for its cursor and keys: orjson straight from the bytes (a fifth of the
    standard library's time, and no decoded copy); a body orjson refuses but Python's parser reads
    (NaN, integers beyond 64 bits) is parsed as before, so what a page means never changes."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body.decode("utf-8"))


def _codec(charset: str) -> str:
    cs = charset.lower().replace("_", "-")
    if cs in {"gbk", "gb2312", "gb18030", "cp936"}:
        return "gb18030"  # a superset: decodes every GBK byte sequence
    if cs in {"utf-8", "utf8"}:
        return "utf-8-sig"
    return cs


def decode_csv_bytes(content: bytes, charset: str) -> str:
    return content.decode(_codec(charset))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _detail(resp: requests.Response) -> str:
    try:
        doc = resp.json()
        return str(doc.get("detail") or doc.get("title") or doc)[:300]
    except ValueError:
        return resp.text[:300]
