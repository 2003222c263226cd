"""`bench.api`'s audit-loss phase (issue 11): PostgreSQL stopped under load, then restarted.

`safecredit serve` with its service database on a throwaway PostgreSQL cluster (the tests' own
`PostgresCluster`: initdb in a temporary directory, run as the `postgres` user when this runs as
root) takes `wrk` load on `GET /v1/restrictions/{code}`; `--outage` seconds into the run the
cluster is stopped (`pg_ctl stop -m fast`) for `--outage` seconds and started again. After the
load the phase waits until the server's spool has drained into the database (the row count stops
changing and no spooled segment is left but the open one) and compares what `wrk` was answered
with the audit rows: every answered call must have its row (target: 0 lost). The server may have
audited a few calls `wrk` stopped waiting for at its end: those are rows without a counted answer,
not losses.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cluster():
    """The tests' throwaway-cluster helper (tests/api_server.py), or None without PostgreSQL."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from api_server import PostgresCluster, find_pg_bin
    finally:
        sys.path.pop(0)
    bindir = find_pg_bin()
    return PostgresCluster(bindir) if bindir else None


def _audit_rows(url: str, consumer: str) -> dict[int, int]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, connect_timeout=5) as con:
        rows = con.execute("SELECT status, count(*) FROM audit_log WHERE consumer = %s GROUP BY status", [consumer])
        return {int(s): int(n) for s, n in rows.fetchall()}


def _spooled(home: Path) -> int:
    """Segments in the spool besides the open one of each live server (one here)."""
    return max(0, len(list((home / "audit-spool").glob("*.jsonl"))) - 1)


def run(home: Path, codes_lua: str, *, outage: int, connections: int, helpers) -> dict:
    """The phase; `helpers`: the bench.api module (BIN, create_key, _free_port, _wait, _stop, wrk)."""
    cluster = _cluster()
    if cluster is None:
        return {"skipped": "PostgreSQL binaries (initdb, pg_ctl) not found: run `make system-deps`"}
    cluster.start()
    server = None
    try:
        url = cluster.create_database(f"sc_bench_{uuid.uuid4().hex[:8]}")
        consumer = "bench-api-outage"
        key = helpers.create_key(home, consumer, url)
        port = helpers._free_port()
        server = subprocess.Popen(
            [str(helpers.BIN), "serve", "--home", str(home), "--port", str(port), "--db-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        helpers._wait(f"http://127.0.0.1:{port}/healthz", server, "safecredit serve (PostgreSQL)")
        events: dict[str, float] = {}

        def outage_now() -> None:
            time.sleep(outage)  # the load runs `outage` seconds before the database goes away
            events["stopped_at"] = time.monotonic()
            cluster.pause()
            events["stopped_for"] = time.monotonic() - events["stopped_at"]
            time.sleep(max(0.0, outage - events["stopped_for"]))
            cluster.resume()
            events["restarted_at"] = time.monotonic()

        with tempfile.TemporaryDirectory(prefix="bench-api-outage-") as tmp:
            lua = Path(tmp) / "get.lua"
            lua.write_text(codes_lua.replace("__KEY__", key), encoding="utf-8")
            t0 = time.monotonic()
            switch = threading.Thread(target=outage_now, name="outage")
            switch.start()
            load = helpers.wrk(f"http://127.0.0.1:{port}", lua, connections, 3 * outage, warmup=False, pid=server.pid)
            switch.join()
        load_end = time.monotonic()
        # drained: no closed segment left and the count unchanged for 2 s (bounded: 300 s)
        last, stable_since, deadline = None, time.monotonic(), time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = _audit_rows(url, consumer)
            if rows != last:
                last, stable_since = rows, time.monotonic()
            elif _spooled(home) == 0 and time.monotonic() - stable_since >= 2:
                break
            time.sleep(0.5)
        drained_s = stable_since - load_end  # when the last row arrived, after the load ended
        rows = last or {}
        answered_2xx = load["requests"] - load["non_2xx"]
        audited_2xx = sum(n for s, n in rows.items() if 200 <= s < 300)
        return {
            "outage_s": outage,
            "load_s": 3 * outage,
            "stopped_after_s": round(events["stopped_at"] - t0, 1),
            "requests": load["requests"],
            "answered_2xx": answered_2xx,
            "answered_other": load["non_2xx"],
            "audit_rows": rows,
            "audited_2xx": audited_2xx,
            "lost": max(0, answered_2xx - audited_2xx),
            "restarted_after_s": round(events["restarted_at"] - t0, 1),
            "drained_after_load_s": round(max(0.0, drained_s), 1),
            "spool_segments_left": _spooled(home),
            "requests_per_s": load["requests_per_s"],
            "cpu_us_per_request": load["cpu_us_per_request"],
            "p99_ms": load["p99_ms"],
        }
    finally:
        if server is not None:
            helpers._stop(server)
        cluster.stop()
