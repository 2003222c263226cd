"""Benchmark (not a test): the restriction answer against the bare FastAPI floor, with `wrk`.

    python -m bench.api [--home var/demo] [--duration 10] [--connections 8] [--rounds 5]   # or: make bench
    python -m bench.api --snapshot-rows 1000000    # only the snapshot load (bench/snapshot_load.py)

Needs a home with a publication (`make demo` makes one) and `wrk` (`make system-deps`). Both
servers run side by side on loopback and are measured in turns, `--rounds` times, who goes first
alternating (a load spike of the shared machine then falls on one round of both; the median
round's ratio is reported, and the median of the rounds' ratios of CPU per request):

1. the floor: `../shared/perf/bare_api.py` (FastAPI + uvicorn returning a constant, no access log);
2. `safecredit serve` (audit on: every call spooled and written to `<home>/service.db`; the access
   log on, as deployed): `GET /v1/restrictions/{code}?matter=public_bidding` over a mix of 30%
   listed and 70% clean unit codes of the publication (issue 11), `--connections` connections;
3. `POST /v1/restrictions/batch` with 1,000 of those codes, one connection (a tender's bidders:
   the latency of one call, not a queue of them).

Each run is `wrk -t1 -c<n> -d<duration>s --latency` after a 2 s warm-up. Prints requests/s, p50,
p99 and the ratio to the floor; writes JSON to bench/out/api-<timestamp>.json and the table, with
the load average before and after (the machine is shared: compare ratios of one sitting only),
into bench/README.md between the `bench.api` markers. Targets (issue 11): ≥ 50% of the floor's
requests/s, p99 ≤ 5 ms; batch p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "safecredit"
BARE = ROOT.parent / "shared" / "perf" / "bare_api.py"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- bench.api results: begin -->", "<!-- bench.api results: end -->"
LISTED_SHARE = 0.3


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--home", default=str(ROOT / "var" / "demo"), help="a home with a publication")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--codes", type=int, default=5000, help="distinct codes in the GET mix")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5, help="turns of bare / ours / batch (the median round is shown)")
    ap.add_argument("--no-readme", action="store_true", help="do not write the results into bench/README.md")
    ap.add_argument(
        "--outage",
        type=int,
        default=30,
        metavar="S",
        help="audit loss: PostgreSQL stopped S seconds under load, then restarted (bench/api_outage.py; 0: skip)",
    )
    ap.add_argument(
        "--snapshot-rows",
        type=int,
        metavar="N",
        help="instead: time loading a synthetic publication of N subjects (bench/snapshot_load.py)",
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _codes(home: Path, n: int, seed: int, counts: dict | None = None) -> list[str]:
    """30% listed and 70% clean unit codes (USCCs) of the served publication, deterministic."""
    import duckdb

    from safecredit.publish import FeedStore

    store = FeedStore(home / "exports")

    def parquet(feed: str) -> str:
        version = store.latest(feed)
        if not version:
            raise SystemExit(f"no {feed} published under {home}: run `make demo` first")
        return "'" + str(store.safe_file_path(feed, version, "full.parquet")).replace("'", "''") + "'"

    con = duckdb.connect()
    listed = sorted(
        c
        for (c,) in con.execute(
            f"SELECT DISTINCT subject_id FROM read_parquet({parquet('blacklist')}) WHERE subject_type = 'unit'"
        ).fetchall()
    )
    clean = sorted(
        c
        for (c,) in con.execute(
            f"SELECT uscc FROM read_parquet({parquet('credit_scores')}) "
            f"WHERE uscc NOT IN (SELECT subject_id FROM read_parquet({parquet('blacklist')}))"
        ).fetchall()
    )
    if not listed or not clean:
        raise SystemExit(f"the publication under {home} has no listed or no clean units")
    if counts is not None:
        counts.update(listed_units=len(listed), clean_units=len(clean))
    rng = random.Random(seed)
    return [rng.choice(listed) if rng.random() < LISTED_SHARE else rng.choice(clean) for _ in range(n)]


def create_key(home: Path, consumer: str, db_url: str | None = None) -> str:
    """A `restrictions:read` key whose rate limit is far above any load here (`keys create`)."""
    db = ["--db-url", db_url] if db_url else []
    out = subprocess.run(
        [str(BIN), "keys", "create", "--consumer", consumer, "--scopes", "restrictions:read"]
        + ["--rate", "100000000", "--burst", "100000000", "--home", str(home), *db],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while True:  # bounded readiness poll
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{what} did not start")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"not a wrk latency: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: Path, connections: int, duration: int, warmup: bool = True, pid: int | None = None) -> dict:
    """One `wrk --latency` run after a 2 s warm-up: requests/s, p50, p99, non-2xx answers, and
    the CPU the server process `pid` spent per request (what a loaded machine distorts least)."""
    base = ["wrk", "-t1", f"-c{connections}", "-s", str(script), "--latency"]
    if warmup:
        subprocess.run([*base, "-d2s", url], check=True, capture_output=True, text=True)
    cpu0 = _cpu_s(pid)
    out = subprocess.run([*base, f"-d{duration}s", url], check=True, capture_output=True, text=True).stdout
    cpu1 = _cpu_s(pid)
    pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {
        "cpu_us_per_request": round((cpu1 - cpu0) / requests * 1e6, 1) if cpu0 is not None and requests else None,
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": round(_ms(pct["50"]), 3),
        "p99_ms": round(_ms(pct["99"]), 3),
        "requests": requests,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else None,
    }


def _lua_get(codes: list[str], key: str, query: str) -> str:
    items = ",".join(json.dumps(c) for c in codes)
    return f"""
local codes = {{{items}}}
local i = 0
wrk.headers["Authorization"] = "Bearer {key}"
request = function()
  i = i % #codes + 1
  return wrk.format("GET", "/v1/restrictions/" .. codes[i] .. "{query}")
end
"""


def _lua_post(body: str, key: str) -> str:
    return f"""
wrk.method = "POST"
wrk.path = "/v1/restrictions/batch"
wrk.body = {json.dumps(body)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def run(args: argparse.Namespace) -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run `make system-deps`")
    home = Path(args.home).resolve()
    if not (home / "exports" / "index.json").is_file():
        raise SystemExit(f"no publication under {home}: run `make demo` first (or pass --home)")
    population: dict = {}
    codes = _codes(home, args.codes, args.seed, population)
    key = create_key(home, "bench-api")
    load_before = os.getloadavg()
    rounds: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        get_lua, post_lua = Path(tmp) / "get.lua", Path(tmp) / "post.lua"
        get_lua.write_text(_lua_get(codes, key, "?matter=public_bidding"), encoding="utf-8")
        post_lua.write_text(_lua_post(json.dumps({"codes": codes[:1000]}), key), encoding="utf-8")
        bare_port, port = _free_port(), _free_port()
        bare = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_api:app", "--app-dir", str(BARE.parent)]
            + ["--port", str(bare_port), "--no-access-log", "--log-level", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = subprocess.Popen(
            [str(BIN), "serve", "--home", str(home), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{bare_port}/v1/restrictions/x", bare, "the bare app")
            _wait(f"http://127.0.0.1:{port}/healthz", server, "safecredit serve")
            # both servers up, measured in turns: a load spike of the shared machine then falls on
            # one round of both, not on one of them (the ratio is taken per round)
            for i in range(args.rounds):
                runs = {
                    "bare_get": lambda: wrk(
                        f"http://127.0.0.1:{bare_port}", get_lua, args.connections, args.duration, pid=bare.pid
                    ),
                    "get": lambda: wrk(
                        f"http://127.0.0.1:{port}", get_lua, args.connections, args.duration, pid=server.pid
                    ),
                }
                # who goes first alternates: a drift of the machine's load within a round then
                # favours neither server
                order = ["bare_get", "get"] if i % 2 == 0 else ["get", "bare_get"]
                rnd = {name: runs[name]() for name in order}
                rnd["batch_1000"] = wrk(f"http://127.0.0.1:{port}", post_lua, 1, args.duration, pid=server.pid)
                rounds.append(rnd)
        finally:
            _stop(server)
            _stop(bare)
    outage = None
    if args.outage:
        from bench import api_outage

        outage = api_outage.run(
            home,
            _lua_get(codes, "__KEY__", "?matter=public_bidding"),
            outage=args.outage,
            connections=args.connections,
            helpers=sys.modules[__name__],
        )
    load_after = os.getloadavg()
    ratios = [r["get"]["requests_per_s"] / r["bare_get"]["requests_per_s"] for r in rounds]
    cpu_ratios = [x for x in (_cpu_ratio(r) for r in rounds) if x is not None]
    best = sorted(range(len(rounds)), key=lambda i: ratios[i])[len(rounds) // 2]  # the median round
    results = rounds[best]
    ratio = ratios[best]
    result = {
        "benchmark": "api",
        "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "home": str(home),
        "publication": population,
        "connections": args.connections,
        "duration_s": args.duration,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "ratio_to_bare": round(ratio, 3),
        "ratios_per_round": [round(x, 3) for x in ratios],
        # the median of the rounds' CPU ratios (each round's bare ÷ ours), and of each server's CPU
        "cpu_ratio_to_bare": round(_median(cpu_ratios), 3) if cpu_ratios else None,
        "cpu_ratios_per_round": [round(x, 3) for x in cpu_ratios],
        "cpu_us_per_request_median": {
            name: _median([r[name]["cpu_us_per_request"] for r in rounds if r[name].get("cpu_us_per_request")])
            for name in ("bare_get", "get")
        },
        **results,
        "rounds": rounds,
        "audit_outage": outage,
        "targets": {
            "ratio_to_bare >= 0.5": ratio >= 0.5,
            "get p99 <= 5 ms": results["get"]["p99_ms"] <= 5,
            "batch p99 <= 50 ms": results["batch_1000"]["p99_ms"] <= 50,
            **({"audit rows lost == 0": outage["lost"] == 0} if outage and "lost" in outage else {}),
        },
    }
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"api-{datetime.now():%Y%m%dT%H%M%S}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    table = markdown(result)
    print(table)
    print(f"ratio to the bare app: {ratio:.1%}")
    if not args.no_readme:
        write_readme(table)
    return result


def markdown(r: dict) -> str:
    def row(name: str, m: dict) -> str:
        cpu = m.get("cpu_us_per_request")
        return (
            f"| {name} | {m['requests_per_s']:,.0f} | {m['p50_ms']:.2f} ms | {m['p99_ms']:.2f} ms | "
            f"{m['requests']:,} | {m['non_2xx']} | {f'{cpu:,.0f} µs' if cpu is not None else '—'} |"
        )

    cpu_ratio, cpu = r.get("cpu_ratio_to_bare"), r.get("cpu_us_per_request_median") or {}

    la, lb = r["load_average_before"], r["load_average_after"]
    return "\n".join(
        [
            f"Measured {r['at']} (`python -m bench.api`, {r['duration_s']} s per run, loopback, 2 cores shared; "
            f"load average before {la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}, after {lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}; "
            f"publication of {r['publication']['listed_units']:,} listed and {r['publication']['clean_units']:,} "
            "clean units):",
            "",
            "| run | req/s | p50 | p99 | requests | non-2xx | server CPU per request |",
            "|---|---|---|---|---|---|---|",
            row(f"bare app (`bare_api.py`), GET, {r['connections']} connections", r["bare_get"]),
            row(f"`safecredit serve`, GET `/v1/restrictions/{{code}}`, {r['connections']} connections", r["get"]),
            row("`safecredit serve`, POST batch of 1,000 codes, 1 connection", r["batch_1000"]),
            "",
            f"Ratio to the bare app: **{r['ratio_to_bare']:.1%}** of its requests/s (the median of "
            f"{len(r['ratios_per_round'])} rounds: "
            + ", ".join(f"{x:.1%}" for x in r["ratios_per_round"])
            + ")"
            + (
                f"; by the servers' CPU per request **{cpu_ratio:.1%}** (bare ÷ ours, the median of the rounds: "
                + ", ".join(f"{x:.1%}" for x in r.get("cpu_ratios_per_round") or [])
                + f"; median CPU per request: bare {cpu.get('bare_get') or 0:,.0f} µs, "
                + f"ours {cpu.get('get') or 0:,.0f} µs)"
                if cpu_ratio
                else ""
            )
            + ". Targets: "
            + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in r["targets"].items())
            + ".",
            *_outage_lines(r.get("audit_outage")),
        ]
    )


def _median(xs: list) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _cpu_ratio(r: dict) -> float | None:
    """The bare app's CPU per request over ours in one round: what the requests/s ratio would be
    if each server had a core to itself (the shared machine moves the wall ratio)."""
    bare, ours = r["bare_get"].get("cpu_us_per_request"), r["get"].get("cpu_us_per_request")
    return bare / ours if bare and ours else None


def _outage_lines(o: dict | None) -> list[str]:
    if not o:
        return []
    if "skipped" in o:
        return ["", f"Audit loss not measured: {o['skipped']}."]
    rows = ", ".join(f"{s}: {n:,}" for s, n in sorted(o["audit_rows"].items()))
    return [
        "",
        f"Audit loss (`--outage {o['outage_s']}`, service database on PostgreSQL): {o['load_s']} s of GET load "
        f"({o['requests_per_s']:,.0f} req/s, p99 {o['p99_ms']:.2f} ms), PostgreSQL stopped "
        f"{o['stopped_after_s']:.0f} s in for {o['outage_s']} s and restarted: **{o['answered_2xx']:,} answers "
        f"2xx, {o['audited_2xx']:,} audit rows 2xx ({rows}), {o['lost']} lost**; {o['answered_other']:,} other "
        f"answers; restarted {o['restarted_after_s']:.0f} s in, the spool drained "
        f"{o['drained_after_load_s']:.1f} s after the load ended ({o['spool_segments_left']} segments left).",
    ]


def write_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.api", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    if args.snapshot_rows:
        from bench import snapshot_load

        print(json.dumps(snapshot_load.run(args.snapshot_rows), indent=1))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
