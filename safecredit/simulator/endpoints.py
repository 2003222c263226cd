"""What a simulated department answers (department-feeds.md): the routes, the catalogue, a page of
records after a cursor, a day's CSV export, and the replies they are made of. The HTTP server and
the faults played on top of these answers are in server.py."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

from . import data_faults as DF
from . import faults as F
from .store import Table, rfc3339, to_local

if TYPE_CHECKING:
    from .server import Department, _Handler

MAX_PAGE = 1000
DEFAULT_LIMIT = 500
CURSOR_TTL = 3600.0
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d+$")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None  # CSV: header line, then one chunk per record


def _json(status: int, obj, **headers) -> Reply:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json; charset=utf-8", **headers})


def _error(status: int, message: str, **headers) -> Reply:
    return _json(status, {"error": message, "status": status}, **headers)


class BadRequest(Exception):
    pass


def _parse_since(value: str) -> datetime:
    if not _RFC3339.match(value):
        raise BadRequest(
            "updated_since must be RFC3339 with an offset, e.g. 2026-11-20T00:00:00+08:00 (URL-encode '+' as %2B)"
        )
    try:
        dt = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as e:
        raise BadRequest(f"updated_since: {e}") from None
    return to_local(dt)


class Endpoints:
    """The department-feeds.md endpoints of the Simulator (which this is mixed into): it reads
    `store`, `seed`, `cfg` (the faults that shape answers), `_now`, `cursor_ttl`, `truth` and `set_now`."""

    def _route(self, dept: Department, req: _Handler, method: str) -> tuple[Reply, str | None, str | None]:
        url = urlsplit(req.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        admin = path.startswith("/_sim/")
        if dept.down == "503" and not admin:
            return _error(503, f"department {dept.id} is down"), None, None
        if req.headers.get("Authorization", "") != f"Bearer {dept.token}":
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"}), None, None
        if admin:
            return self._admin(dept, path, method, q), None, None
        if method != "GET":
            return _error(405, "only GET", Allow="GET"), None, None
        parts = path.strip("/").split("/")
        try:
            if parts == ["datasets"]:
                return self._catalogue(dept), "GET /datasets", None
            if len(parts) == 3 and parts[0] == "datasets" and parts[2] in ("records", "export.csv"):
                t = self.store.tables.get((dept.id, parts[1]))
                transport = "json" if parts[2] == "records" else "csv"
                if t is None:
                    return _error(404, f"no dataset {parts[1]!r}"), None, None
                if transport not in dept.transports:
                    return _error(404, f"{parts[1]} is not offered as {transport}"), None, None
                if transport == "json":
                    reply, key = self._records(dept, t, q)
                else:
                    reply, key = self._export(dept, t, q)
                return reply, key, t.dataset
        except BadRequest as e:
            return _error(400, str(e)), None, None
        return _error(404, f"no such resource {path}"), None, None

    def _admin(self, dept: Department, path: str, method: str, q: dict) -> Reply:
        if path == "/_sim/truth" and method == "GET":
            ds = q.get("dataset")
            if not ds:
                return _error(400, "dataset is required")
            if (dept.id, ds) not in self.store.tables:
                return _error(404, f"no dataset {ds!r}")
            return _json(200, {"department": dept.id, "dataset": ds, "truth": self.truth(dept.id, ds)})
        if path == "/_sim/clock":
            if method == "POST":
                try:
                    self.set_now(q.get("now", ""))
                except (ValueError, TypeError) as e:
                    return _error(400, f"now: {e}")
            return _json(200, {"now": rfc3339(self._now)})
        return _error(404, f"no such resource {path}")

    def _catalogue(self, dept: Department) -> Reply:
        items = []
        for ds in dept.datasets:
            item = {"name": ds, "schema_version": "1", "transports": list(dept.transports)}
            if "csv" in dept.transports:
                item["first_export_date"] = self.store.start.isoformat()
                item["last_export_date"] = self._now.date().isoformat()
            items.append(item)
        return _json(200, {"department": dept.id, "datasets": items})

    def _decode_cursor(self, dataset: str, cursor: str) -> tuple[tuple[datetime, str], float, int | None]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if raw["d"] != dataset:
                raise BadRequest("cursor belongs to another dataset")
            pos = raw.get("p")
            return (
                (datetime.fromisoformat(raw["t"]), str(raw["r"])),
                float(raw["i"]),
                pos if isinstance(pos, int) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
            raise BadRequest("malformed cursor") from None

    @staticmethod
    def _encode_cursor(dataset: str, ts: datetime, rid: str, pos: int | None = None) -> str:
        # the key (t, r) is the cursor; the position p only spares the store a search for it
        doc = {"d": dataset, "t": ts.isoformat(), "r": rid, "i": round(time.monotonic(), 3), "p": pos}
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    def _records(self, dept: Department, t: Table, q: dict) -> tuple[Reply, str]:
        try:
            limit = int(q.get("limit", DEFAULT_LIMIT))
        except ValueError:
            raise BadRequest("limit must be an integer in 1..1000") from None
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest("limit must be an integer in 1..1000")
        since = _parse_since(q["updated_since"]) if q.get("updated_since") else None
        after = pos = None
        norm = {k: v for k, v in q.items() if k in ("updated_since", "limit")}
        if q.get("cursor"):
            after, issued, pos = self._decode_cursor(t.dataset, q["cursor"])
            if time.monotonic() - issued > self.cursor_ttl:
                return _error(410, "cursor expired: start again from updated_since"), ""
            norm["cursor"] = f"{after[0].isoformat()}|{after[1]}"
        key = f"GET /datasets/{t.dataset}/records?{urlencode(sorted(norm.items()))}"
        size = limit
        if size > 1 and F.unit(self.seed, "short_pages", key) < self.cfg.rate("short_pages", dept.id, t.dataset):
            size = 1 + F.hv(self.seed, "short_pages", "size", key) % (size // 2)
        now = self._now
        rows, last = self.store.page(t, now, since, after, size + 1, pos)
        more, rows = len(rows) > size, rows[:size]
        last = None if last is None else last - (1 if more else 0)  # the position of rows[-1]
        if (
            after is not None
            and rows
            and F.unit(self.seed, "page_repeat", key) < self.cfg.rate("page_repeat", dept.id, t.dataset)
        ):
            k = 1 + F.hv(self.seed, "page_repeat", "k", key) % 3
            rows = self.store.before(t, now, since, after, k, pos) + rows
        ctx = self.store.context()
        items = [self.store.render(t, r, ctx) for r in rows]
        numeric = self.cfg.rate("numeric_json", dept.id, t.dataset)
        if numeric > 0:
            for item in items:
                if F.unit(self.seed, "numeric_json", item["record_id"]) < numeric:
                    for k in DF.NUMERIC_FIELDS.intersection(item):
                        v = item[k]
                        item[k] = int(v) if _INT.match(v) else float(v) if _FLOAT.match(v) else v
        body = {
            "dataset": t.dataset,
            "schema_version": "1",
            "items": items,
            "next_cursor": self._encode_cursor(t.dataset, rows[-1][0], rows[-1][2], last) if more else None,
            "server_time": rfc3339(now),
        }
        return _json(200, body), key

    def _export(self, dept: Department, t: Table, q: dict) -> tuple[Reply, str]:
        value = q.get("date", "")
        try:
            if not _DATE.match(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            raise BadRequest("date must be YYYY-MM-DD") from None
        now = self._now
        if not self.store.start <= day <= now.date():
            return _error(404, f"no export for {day}: exports run from {self.store.start} to {now.date()}"), ""
        header = self.store.header(t)
        crlf = self.cfg.on("crlf", dept.id, t.dataset)
        gbk = self.cfg.on("gbk", dept.id, t.dataset)
        bom = self.cfg.on("utf8_bom", dept.id, t.dataset) and not gbk
        charset = "GBK" if gbk else "utf-8"
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_MINIMAL)

        def line(values) -> bytes:
            buf.seek(0)
            buf.truncate()
            writer.writerow(values)
            return buf.getvalue().encode("gbk", errors="replace") if gbk else buf.getvalue().encode("utf-8")

        chunks = [(b"\xef\xbb\xbf" if bom else b"") + line(header)]
        ctx = self.store.context()
        rows = self.store.day(t, now, day)
        for r in rows:
            rec = self.store.render(t, r, ctx)
            chunks.append(line([rec.get(c, "") for c in header]))
        headers = {
            "Content-Type": f"text/csv; charset={charset}",
            "X-Record-Count": str(len(rows)),
            "Content-Disposition": f'attachment; filename="{t.dataset}-{day}.csv"',
        }
        return Reply(200, b"".join(chunks), headers, chunks), f"GET /datasets/{t.dataset}/export.csv?date={day}"
