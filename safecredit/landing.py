"""Raw landing: every fetch written once, immutably, with a manifest; watermarks per source.

Layout under `<home>/raw/`:

    <dept>/<dataset>/<fetch_id>/manifest.json    what was asked, when, rows, sha256 of each file
    <dept>/<dataset>/<fetch_id>/pages/<n>.json   JSON transport: each page's body exactly as received
                                                 (repeats dropped on reading: safecredit.pages)
    <dept>/<dataset>/<fetch_id>/items.jsonl      JSON transport before pages: one deduplicated item a line
    <dept>/<dataset>/<fetch_id>/days/<D>.csv     CSV transport: each day's bytes exactly as received
    <dept>/<dataset>/_state.json                 the watermark, advanced only after a fetch is landed

A fetch is written into `<fetch_id>.partial/` and renamed when complete (fsync first), so a crash
leaves no half fetch that replay would read. Any run can be replayed from here without calling a
department.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from safecredit.config import SHANGHAI, Department
from safecredit.connectors.client import (
    DepartmentClient,
    SourceError,
    SourceUnavailable,
)
from safecredit.csv_days import pull_csv
from safecredit.pages import PAGES, page_path

MANIFEST = "manifest.json"


@dataclass
class FetchResult:
    department: str
    dataset: str
    transport: str
    status: str  # landed | unavailable | error
    fetch_id: str | None = None
    rows: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    message_zh: str = ""
    message_en: str = ""
    params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def parse_ts(value: str) -> datetime:
    """RFC3339 (or Shanghai-local without offset) → aware datetime."""
    v = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(v)
    return dt if dt.tzinfo else dt.replace(tzinfo=SHANGHAI)


def fmt_ts(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).isoformat(timespec="seconds")


def new_fetch_id(now: datetime | None = None) -> str:
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_json_atomic(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer: sensors and runs may write the same state file at once
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class SourceDir:
    """The landing folder of one (department, dataset)."""

    def __init__(self, raw_root: Path, dept: str, dataset: str):
        self.root = raw_root / dept / dataset
        self.dept, self.dataset = dept, dataset
        self.digests: dict[Path, str] = {}  # sha256 of the files `land` wrote, taken from memory

    def land(self, path: Path, data: bytes) -> None:
        """Write one received body into the fetch being built, hashed from memory (`commit` then
        need not read it back)."""
        path.write_bytes(data)
        self.digests[path] = hashlib.sha256(data).hexdigest()

    @property
    def state_path(self) -> Path:
        return self.root / "_state.json"

    def state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def save_state(self, state: dict) -> None:
        write_json_atomic(self.state_path, state)

    def fetches(self) -> list[Path]:
        """Complete fetches, oldest first (fetch ids sort by time)."""
        if not self.root.exists():
            return []
        return sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.endswith(".partial") and (p / MANIFEST).exists()
        )

    def begin(self, fetch_id: str) -> Path:
        work = self.root / f"{fetch_id}.partial"
        work.mkdir(parents=True, exist_ok=False)
        return work

    def commit(self, work: Path, manifest: dict) -> Path:
        files = []
        for f in sorted(work.rglob("*")):
            if f.is_file():
                digest = self.digests.get(f) or _sha256(f)
                files.append({"name": str(f.relative_to(work)), "size": f.stat().st_size, "sha256": digest})
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        manifest = {**manifest, "files": files}
        write_json_atomic(work / MANIFEST, manifest)
        final = work.with_name(work.name[: -len(".partial")])
        os.rename(work, final)
        _fsync_dir(final.parent)
        return final

    def discard_partials(self) -> None:
        import shutil

        if self.root.exists():
            for p in self.root.glob("*.partial"):
                shutil.rmtree(p, ignore_errors=True)


class _Overlap:
    """Counts the repeats the landing's SQL dedup will drop (safecredit.pages), without a look at
    every item: items arrive ordered by (updated_at, record_id), so a repeat — a page repeated, a
    restart after `410` — sits at the start of a page, at or below the last key seen. Only those
    leading items are keyed, against the two previous pages; an out-of-order key never seen is
    counted, not dropped, so a department's ordering mistake loses nothing."""

    def __init__(self):
        self.last: tuple | None = None
        self.recent: list[list] = []
        self.duplicates = 0
        self.out_of_order = 0

    def page(self, items: list) -> None:
        seen: set[tuple] | None = None
        for item in items:
            if self.last is None or not isinstance(item, dict):
                break
            key = _item_key(item)
            if key > self.last:
                break
            if seen is None:
                seen = {_item_key(x) for page in self.recent for x in page if isinstance(x, dict)}
            if key in seen:
                self.duplicates += 1
            else:
                self.out_of_order += 1
        tail = next((x for x in reversed(items) if isinstance(x, dict)), None)
        if tail is not None:
            self.last = max(self.last or (), _item_key(tail))
        self.recent = [*self.recent[-1:], items]


def _item_key(item: dict) -> tuple:
    ts = item.get("updated_at")
    try:
        t = parse_ts(str(ts)).timestamp() if ts else 0.0
    except ValueError:
        t = 0.0
    return (t, str(item.get("record_id")), str(ts), str(item.get("op")))


def pull(
    dept: Department,
    dataset: str,
    raw_root: Path,
    *,
    overlap_hours: float = 24,
    csv_overlap_days: int = 1,
    page_limit: int = 1000,
    csv_workers: int = 4,
    client: DepartmentClient | None = None,
    window: tuple[date, date] | None = None,
    now: datetime | None = None,
) -> FetchResult:
    """Fetch what changed since the watermark (or the `window` of days for a backfill) and land it.

    Never raises for a department's trouble: the result says `unavailable`/`error` with a
    bilingual message, and nothing is landed or advanced for that source.
    """
    src = SourceDir(raw_root, dept.id, dataset)
    src.discard_partials()
    own_client = client is None
    client = client or DepartmentClient(dept)
    transport = dept.transport
    result = FetchResult(dept.id, dataset, transport, "error")
    fetch_id = new_fetch_id(now)
    work: Path | None = None
    try:
        work = src.begin(fetch_id)
        if transport == "json":
            manifest, new_state = _pull_json(
                client, dept, dataset, src, work, result, overlap_hours, page_limit, window
            )
        else:
            manifest, new_state = pull_csv(
                client, dept, dataset, src, work, result, csv_overlap_days, window, csv_workers
            )
        manifest.update(
            {
                "department": dept.id,
                "dataset": dataset,
                "transport": transport,
                "fetch_id": fetch_id,
                "rows": result.rows,
                "duplicates": result.duplicates,
                "out_of_order": result.out_of_order,
                "params": result.params,
                "requests": client.stats.requests,
                "retries": client.stats.retries,
                "throttled": client.stats.throttled,
                "finished_at": fmt_ts(datetime.now(timezone.utc)),
            }
        )
        src.commit(work, manifest)
        work = None
        src.save_state(
            {
                **src.state(),
                **(new_state or {}),
                "last_success": manifest["finished_at"],
                "last_status": "landed",
                "last_error_zh": None,
                "last_error_en": None,
            }
        )
        result.status, result.fetch_id = "landed", fetch_id
        result.message_en = f"landed {result.rows} records"
        result.message_zh = f"已落地 {result.rows} 条记录"
    except SourceUnavailable as exc:
        result.status, result.message_zh, result.message_en = "unavailable", exc.zh, exc.en
    except SourceError as exc:
        result.status, result.message_zh, result.message_en = "error", exc.zh, exc.en
    finally:
        if result.status != "landed":
            src.save_state(
                {
                    **src.state(),
                    "last_status": result.status,
                    "last_failure": fmt_ts(datetime.now(timezone.utc)),
                    "last_error_zh": result.message_zh,
                    "last_error_en": result.message_en,
                }
            )
        if work is not None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        if own_client:
            client.close()
    return result


def _at_or_after(ts, until: datetime) -> bool:
    try:
        return bool(ts) and parse_ts(str(ts)) >= until
    except ValueError:
        return False


def _pull_json(client, dept, dataset, src, work, result, overlap_hours, page_limit, window):
    state = src.state()
    until = None
    if window:
        since = datetime.combine(window[0], datetime.min.time(), SHANGHAI)
        until = datetime.combine(window[1] + timedelta(days=1), datetime.min.time(), SHANGHAI)
        updated_since = fmt_ts(since)
    elif state.get("watermark"):
        updated_since = fmt_ts(parse_ts(state["watermark"]) - timedelta(hours=overlap_hours))
    elif dept.since:
        updated_since = fmt_ts(datetime.combine(date.fromisoformat(str(dept.since)), datetime.min.time(), SHANGHAI))
    else:
        updated_since = None
    result.params = {"updated_since": updated_since, "limit": page_limit, "until": fmt_ts(until) if until else None}
    overlap = _Overlap()
    first_server_time: str | None = None
    pages = 0
    max_seen: list[str | None] = [None]
    from safecredit.progress import bar

    # each page lands as its body, byte for byte: no item is re-serialised, and the repeats are
    # dropped when raw_load reads the pages (a backfill's items at or after `until` too)
    (work / PAGES).mkdir()
    with bar(f"fetch {dept.id}/{dataset} (json)") as progress:
        for page in client.iter_pages(
            dataset, updated_since=updated_since, limit=page_limit, resume_from=lambda: max_seen[0]
        ):
            progress.advance(len(page.items))
            first_server_time = first_server_time or page.server_time
            if not page.items:
                continue
            pages += 1
            src.land(page_path(work, pages), page.body)
            overlap.page(page.items)
            result.rows += len(page.items)
            # items come in updated_at order: the page's last one is the newest (where a restart
            # after 410 resumes, inclusive) and tells whether a backfill window has been passed
            ts = next((x.get("updated_at") for x in reversed(page.items) if isinstance(x, dict)), None)
            if ts and (max_seen[0] is None or str(ts) > max_seen[0]):
                max_seen[0] = str(ts)
            if until is not None and _at_or_after(ts, until):
                # the window's last page: raw_load drops its items past `until`; so does the count
                result.rows -= sum(
                    1 for x in page.items if isinstance(x, dict) and _at_or_after(x.get("updated_at"), until)
                )
                break
    result.duplicates, result.out_of_order = overlap.duplicates, overlap.out_of_order
    result.rows -= overlap.duplicates
    # The protocol guarantees no later version is stamped before a server_time already served,
    # so the first page's server_time is a safe watermark (the overlap window adds margin).
    new_state = None if window else {"watermark": first_server_time or state.get("watermark"), "last_fetch": None}
    manifest = {"pages": pages, "layout": PAGES, "server_time": first_server_time}
    if new_state is not None:
        new_state["last_fetch"] = work.name[: -len(".partial")]
    return manifest, new_state


def source_states(raw_root: Path) -> list[dict]:
    """Every (department, dataset) ever attempted: last success, last status and error."""
    out = []
    if not raw_root.exists():
        return out
    for dept_dir in sorted(p for p in raw_root.iterdir() if p.is_dir()):
        for ds_dir in sorted(p for p in dept_dir.iterdir() if p.is_dir()):
            st = SourceDir(raw_root, dept_dir.name, ds_dir.name).state()
            if st:
                out.append({"department": dept_dir.name, "dataset": ds_dir.name, **st})
    return out


def landed_departments(raw_root: Path, dataset: str) -> list[str]:
    """Departments with at least one complete fetch of `dataset` (what staging and replay read)."""
    if not raw_root.exists():
        return []
    return sorted(d.name for d in raw_root.iterdir() if d.is_dir() and SourceDir(raw_root, d.name, dataset).fetches())
