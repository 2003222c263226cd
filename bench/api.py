"""Benchmark (not a test): `GET /v1/restrictions/{code}` under a bounded loopback load.

    python -m bench.api [--home var/demo] [--requests 20000] [--clients 8]

Needs a home with a publication (`make demo` makes one). Starts `safecredit serve` as its own
process on a free loopback port, creates a key with a rate limit above the load, and sends a fixed
number of requests from a fixed number of client threads (codes drawn deterministically from the
published list and registry: restricted and unrestricted units and persons). Reports requests per
second and p50/p90/p99/max latency; writes JSON to bench/out/api-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "safecredit"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _codes(home: Path, n: int, seed: int) -> list[str]:
    import pyarrow.parquet as pq

    from safecredit.publish import FeedStore

    store = FeedStore(home / "exports")
    units = set()
    for feed, col in (("restrictions", "subject_code"), ("blacklist", "subject_code"), ("credit_scores", "uscc")):
        v = store.latest(feed)
        if v:
            t = pq.read_table(store.safe_file_path(feed, v, "full.parquet"))
            if col in t.column_names:
                units |= {c for c in t.column(col).to_pylist() if c and "*" not in c}
    pool = sorted(units)
    if not pool:
        raise SystemExit("no published codes under " + str(home) + ": run `make demo` first")
    rng = random.Random(seed)
    return [rng.choice(pool) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=str(ROOT / "var" / "demo"))
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    home = Path(args.home).resolve()
    out = subprocess.run(
        [
            str(BIN),
            "keys",
            "create",
            "--consumer",
            "bench",
            "--scopes",
            "restrictions:read",
            "--rate",
            "1000000",
            "--burst",
            "1000000",
            "--home",
            str(home),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    key = out.stdout.strip().splitlines()[-1]
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN), "serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded readiness poll
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        codes = _codes(home, args.requests, args.seed)
        per = [codes[i :: args.clients] for i in range(args.clients)]
        lat: list[list[float]] = [[] for _ in range(args.clients)]
        errors = [0] * args.clients

        def client(i: int) -> None:
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {key}"
            for code in per[i]:
                t0 = time.perf_counter()
                r = s.get(f"{url}/v1/restrictions/{code}", timeout=30)
                lat[i].append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors[i] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)
    all_lat = sorted(x for one in lat for x in one)

    def pct(p: float) -> float:
        return all_lat[min(len(all_lat) - 1, int(p * len(all_lat)))] * 1000

    result = {
        "benchmark": "api_restrictions",
        "command": "python -m bench.api " + " ".join(argv or sys.argv[1:]),
        "home": str(home),
        "requests": len(all_lat),
        "clients": args.clients,
        "errors": sum(errors),
        "seconds": round(wall, 3),
        "requests_per_s": round(len(all_lat) / wall, 1),
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(all_lat[-1] * 1000, 2),
        "mean_ms": round(statistics.mean(all_lat) * 1000, 2),
        "cpus": 2,
        "note": "client threads and server share the machine's 2 cores",
    }
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"api-{datetime.now():%Y%m%dT%H%M%S}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0 if not sum(errors) else 1


if __name__ == "__main__":
    raise SystemExit(main())
