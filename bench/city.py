"""A city's nights end to end: demo data over real HTTP with realistic faults, through `safecredit run`.

1. generate the departments' data for ``--scale`` subjects (cached under bench/out/data/, the same
   cache as ``ingest``) and serve it from a child process, its clock ``--days`` before the data's end;
2. **full run**: ``safecredit run`` on a fresh home, as of that day;
3. **unchanged night**: the same command again (same inputs, same ``as_of``);
4. **changed night**: the simulator's clock moves ``--days`` forward (≈ 1% of the history's records
   appear, with the faults' corrections) and the run answers as of the new day;
5. **replay**: ``safecredit replay`` rebuilds staging, rules and publication from the raw landing.

Each step is a child process of its own: wall seconds, CPU seconds (user + system) and peak RSS come
from ``os.wait4`` of that process, so nothing of the benchmark itself is counted. The exports added
by each step (bytes of new files, hard links not counted) and the run summary's counts are reported.
Writes bench/out/city-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench.ingest import OUT, _git_state, ensure_data

ROOT = Path(__file__).resolve().parent.parent
SAFECREDIT = Path(sys.executable).parent / "safecredit"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=int, default=200_000, help="registered subjects (default 200,000: a city)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--faults", default="realistic", help="simulator faults (default realistic; '' for none)")
    p.add_argument("--days", type=int, default=30, help="days the clock moves before the changed night")
    p.add_argument("--keep", action="store_true", help="keep the home (printed)")


def _sim_child(data_dir: str, seed: int, faults: str, sources: str, now: str, conn) -> None:
    """Child process: the departments, until the parent says stop; ("clock", iso) moves their clock."""
    from safecredit.demo import _faults
    from safecredit.simulator import start_simulator

    sim = start_simulator(Path(data_dir), port=0, seed=seed, faults=_faults(faults), sim_now=now)
    try:
        sim.write_sources(Path(sources))
        conn.send("ready")
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg == "stop":
                return
            sim.set_now(msg[1])
            conn.send("ok")
    finally:
        sim.stop()


def _exports_bytes(exports: Path) -> int:
    """Bytes of the distinct files under exports (a hard link to a file already counted is free)."""
    seen, total = set(), 0
    for path in exports.rglob("*"):
        if path.is_file():
            st = path.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _last_summary(home: Path) -> dict:
    """The step timings and feed changes of the run just finished (its own summary.json)."""
    runs = sorted((home / "logs" / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    if not runs:
        return {}
    summary = json.loads(runs[-1].read_text(encoding="utf-8"))
    return {"run_steps": summary.get("steps", {}), "feed_deltas": summary.get("feed_deltas", {})}


def _step(name: str, args: list[str], env: dict, exports: Path) -> dict:
    before = _exports_bytes(exports) if exports.exists() else 0
    started = time.perf_counter()
    proc = subprocess.Popen([str(SAFECREDIT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    step = {
        "step": name,
        "command": "safecredit " + " ".join(args),
        "exit_code": code,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "exports_added_mib": round(((_exports_bytes(exports) if exports.exists() else 0) - before) / 2**20, 1),
        "output_tail": out.decode("utf-8", "replace").splitlines()[-25:],
        **_last_summary(exports.parent),
    }
    print(
        f"{name:>16}: {step['seconds']:7.1f} s wall {step['cpu_seconds']:7.1f} CPU s "
        f"{step['peak_rss_mib']:6,} MiB peak, exports +{step['exports_added_mib']:,} MiB, exit {code}",
        flush=True,
    )
    return step


def run(args: argparse.Namespace) -> dict:
    data_dir, meta, generated = ensure_data(args.seed, args.scale, 0.4)
    end = date.fromisoformat(meta["end"])
    first = end - timedelta(days=args.days)
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    home = OUT / f"run-city-{stamp}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    sources = home / "sources.yaml"
    env = {
        **os.environ,
        "SAFECREDIT_HOME": str(home),
        "GX_ANALYTICS_ENABLED": "false",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    env.pop("SAFECREDIT_SOURCES", None)
    load = os.getloadavg()
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    sim = ctx.Process(
        target=_sim_child,
        args=(str(data_dir), args.seed, args.faults, str(sources), f"{first.isoformat()}T23:00:00+08:00", child),
        daemon=True,
    )
    t0 = time.perf_counter()
    sim.start()
    child.close()
    if conn.recv() != "ready":  # pragma: no cover
        raise SystemExit("simulator failed to start")
    startup = time.perf_counter() - t0
    print(f"city of {args.scale:,} subjects, data {data_dir.name}, simulator up in {startup:.0f} s", flush=True)
    exports = home / "exports"
    common = ["--home", str(home)]
    steps = [
        _step("full run", ["run", *common, "--sources", str(sources), "--as-of", first.isoformat()], env, exports),
        _step(
            "unchanged night", ["run", *common, "--sources", str(sources), "--as-of", first.isoformat()], env, exports
        ),
    ]
    conn.send(("clock", f"{end.isoformat()}T23:00:00+08:00"))
    conn.recv()
    steps.append(
        _step(
            f"+{args.days} days night",
            ["run", *common, "--sources", str(sources), "--as-of", end.isoformat()],
            env,
            exports,
        )
    )
    steps.append(_step("replay", ["replay", *common, "--as-of", end.isoformat()], env, exports))
    conn.send("stop")
    sim.join(30)
    full = steps[0]["seconds"]
    report = {
        "benchmark": "city",
        "scale": args.scale,
        "seed": args.seed,
        "faults": args.faults,
        "data": data_dir.name,
        "generation_seconds": generated,
        "simulator_startup_seconds": round(startup, 1),
        "meta": {k: meta[k] for k in ("start", "end") if k in meta},
        "load_average_start": load,
        "load_average_end": os.getloadavg(),
        "steps": steps,
        "unchanged_share_of_full": round(steps[1]["seconds"] / full, 3) if full else None,
        "cpus": os.cpu_count(),
        **_git_state(),
    }
    path = OUT / f"city-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    print(f"unchanged night / full run: {report['unchanged_share_of_full']:.1%}; load {load} → {os.getloadavg()}")
    print(f"report: {path}")
    if args.keep:
        print(f"home: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return report


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    run(ap.parse_args())
