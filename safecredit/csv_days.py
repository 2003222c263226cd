"""The CSV transport of a pull (department-feeds.md §3): the days a department exports since the
watermark (or a backfill's window), fetched by a few workers each with its own session, every day
checked against its `X-Record-Count`, landed as received under `<fetch>/days/<D>.csv`."""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from safecredit.connectors.client import DepartmentClient, SourceError, SourceUnavailable, decode_csv_bytes


def count_csv_records(text: str) -> tuple[list[str], int]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    return header, sum(1 for row in reader if row)


def _fetch_days(client, dept, dataset, days: list[str], workers: int):
    """Daily files in day order, fetched by a few workers each with its own session (a first
    run of a CSV-only department asks for years of days)."""
    if workers <= 1 or len(days) < 8:
        for day in days:
            got, n = _csv_day_checked(client, dept, dataset, day)
            yield day, got, n
        return

    local = threading.local()
    extra: list[DepartmentClient] = []
    lock = threading.Lock()

    def one(day):
        c = getattr(local, "client", None)
        if c is None:
            # the department's gate is shared: the day workers count against its requests in flight
            c = local.client = DepartmentClient(
                dept, client.retry, sleep=client.sleep, seed=len(extra), gate=getattr(client, "gate", None)
            )
            with lock:
                extra.append(c)
        got, n = _csv_day_checked(c, dept, dataset, day)
        return day, got, n

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"csv-{dept.id}") as pool:
            yield from pool.map(one, days)
    finally:
        for c in extra:
            client.stats.requests += c.stats.requests
            client.stats.retries += c.stats.retries
            client.stats.throttled += c.stats.throttled
            client.stats.errors += c.stats.errors
            c.close()


def pull_csv(client, dept, dataset, src, work, result, overlap_days, window, csv_workers=4):
    cat = client.catalogue()
    entry = next((d for d in cat.get("datasets", []) if d.get("name") == dataset), None)
    if entry is None or "csv" not in entry.get("transports", []):
        raise SourceError(
            dept.id,
            dataset,
            f"部门 {dept.id} 的目录中没有 {dataset} 的 CSV 导出。",
            f"department {dept.id} lists no CSV export for {dataset}",
        )
    first = date.fromisoformat(entry["first_export_date"])
    last = date.fromisoformat(entry["last_export_date"])
    state = src.state()
    if window:
        start, end = max(first, window[0]), min(last, window[1])
    else:
        if state.get("csv_last_day"):
            start = date.fromisoformat(state["csv_last_day"]) - timedelta(days=overlap_days)
        elif dept.since:
            start = date.fromisoformat(str(dept.since))
        else:
            start = first
        start, end = max(start, first), last
    result.params = {"from": start.isoformat(), "to": end.isoformat()}
    days_dir = work / "days"
    days_dir.mkdir()
    all_days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    days: list[dict] = []
    from safecredit.progress import bar

    with bar(f"fetch {dept.id}/{dataset} (csv days)", total=len(all_days)) as progress:
        for day, got, n in _fetch_days(client, dept, dataset, all_days, csv_workers):
            progress.advance()
            if n:
                src.land(days_dir / f"{day}.csv", got.content)
            days.append({"date": day, "rows": n, "charset": got.charset})
            result.rows += n
    new_state = None if window else {"csv_last_day": end.isoformat(), "last_fetch": work.name[: -len(".partial")]}
    return {"days": days}, new_state


def _csv_day_checked(client, dept, dataset, day, attempts: int = 4):
    """A file cut short at a row boundary still parses: `X-Record-Count` catches it."""
    for _ in range(attempts):
        got = client.csv_day(dataset, day)
        _, n = count_csv_records(decode_csv_bytes(got.content, got.charset))
        if got.record_count is None or got.record_count == n:
            return got, n
        client.stats.retries += 1
    raise SourceUnavailable(
        dept.id,
        f"{dataset} {day}",
        f"部门 {dept.id} 的 {dataset} {day} CSV 行数与 X-Record-Count 不符（{n} ≠ {got.record_count}），多次重试无效。",
        f"department {dept.id}: {dataset} CSV for {day} has {n} rows but X-Record-Count says "
        f"{got.record_count}, after {attempts} tries",
    )
