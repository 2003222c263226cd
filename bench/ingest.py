"""Ingestion + validation throughput of the ``penalties`` dataset, end to end over real HTTP.

1. generate department data with ≈ ``--penalties`` penalty rows (cached under bench/out/data/);
2. start the department simulator (clean, or ``--faults realistic``), by default in a child
   process so that server and client do not share one GIL — departments are other machines;
3. ``landing.pull`` penalties from every department serving them (JSON and CSV transports);
4. ``staging.load_raw`` (landing → ``raw.penalties``), ``staging.stage`` (contracts → typed,
   violations, batches, staged: the validation) and the Great Expectations suite over
   ``staged.penalties_current``;
5. a rich table and ``bench/out/ingest-<timestamp>.json``.

Generation and simulator start-up are fixtures: reported, not part of the total.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import re
import resource
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
DATASET = "penalties"
PAGE_LIMIT = 1000

# Data plan: the generator's defaults (0.4 penalties per subject over 2019–2026) until the
# registry reaches REGISTRY_CAP enterprises — a large prefecture-level city — and beyond that
# more penalties per subject, so the other datasets stay the size of a real city. Measured on
# generator 1.0.0: penalties ≈ scale × (1.009 × pps + 0.011) (ordinary inspections plus the
# accident, fraud and refused-execution penalties).
REGISTRY_CAP = 500_000
DEFAULT_PPS = 0.4
_SLOPE, _BASE = 1.009, 0.011


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--penalties",
        type=int,
        default=1_000_000,
        metavar="N",
        help="target number of penalty rows over all departments (default 1,000,000)",
    )
    p.add_argument("--seed", type=int, default=42, help="generator and simulator seed (default 42)")
    p.add_argument("--scale", type=int, default=None, help="override the planned number of registered subjects")
    p.add_argument("--pps", type=float, default=None, metavar="P", help="override the planned penalties_per_subject")
    p.add_argument("--faults", default="clean", help="simulator faults: clean (default), realistic, or a fault spec")
    p.add_argument(
        "--sim",
        choices=("process", "thread"),
        default="process",
        help="simulator in a child process (default) or in this process's threads",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile every timed phase: bench/out/ingest-<ts>-<phase>.prof + top functions",
    )
    p.add_argument("--keep", action="store_true", help="keep the run's landing and warehouse under bench/out/run-<ts>/")


def plan(target: int) -> tuple[int, float]:
    """(scale, penalties_per_subject) giving ≈ ``target`` penalty rows."""
    target = max(1, int(target))
    scale = max(1_000, min(REGISTRY_CAP, round(target / (_SLOPE * DEFAULT_PPS + _BASE))))
    pps = max(DEFAULT_PPS, (target / scale - _BASE) / _SLOPE)
    return scale, round(pps, 3)


def ensure_data(seed: int, scale: int, pps: float, start: date | None = None) -> tuple[Path, dict, float | None]:
    """Cached generator output keyed by its parameters; (dir, meta, seconds or None if cached).
    `start`: the first day of the generated history (default: the generator's)."""
    from safecredit.generator import GENERATOR_VERSION, generate

    since = f"-from{start.isoformat()}" if start else ""
    out = OUT / "data" / f"s{seed}-n{scale}-p{pps:g}{since}-g{GENERATOR_VERSION}"
    meta_path = out / "meta.json"
    if meta_path.exists():
        return out, json.loads(meta_path.read_text(encoding="utf-8")), None
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    meta = generate(
        tmp,
        seed=seed,
        scale=scale,
        penalties_per_subject=pps,
        progress=sys.stderr.isatty(),
        **({"start": start} if start else {}),
    )
    took = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out, meta, took


# ---------------------------------------------------------------------------- the simulator


def _sim_child(data_dir: str, seed: int, faults, sources: str, conn) -> None:
    """Child process: serve until the parent says stop (or goes away)."""
    from safecredit.simulator import start_simulator

    t0 = time.perf_counter()
    try:
        sim = start_simulator(Path(data_dir), port=0, seed=seed, faults=faults)
    except BaseException as exc:  # noqa: BLE001 — report, then die
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    try:
        sim.write_sources(Path(sources))
        conn.send(("ready", time.perf_counter() - t0))
        try:
            conn.recv()
        except EOFError:
            pass
    finally:
        sim.stop()


class SimHandle:
    """The simulator, in this process or a child; ``stop()`` returns the child's rusage."""

    def __init__(self, mode: str, data_dir: Path, seed: int, faults, sources: Path):
        self.mode, self.proc, self.sim, self.conn = mode, None, None, None
        t0 = time.perf_counter()
        if mode == "thread":
            from safecredit.simulator import start_simulator

            self.sim = start_simulator(data_dir, port=0, seed=seed, faults=faults)
            self.sim.write_sources(sources)
        else:
            ctx = mp.get_context("spawn")  # never fork a process holding DuckDB and threads
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(
                target=_sim_child,
                name="bench-simulator",
                daemon=True,
                args=(str(data_dir), seed, faults, str(sources), child),
            )
            self.proc.start()
            child.close()
            kind, value = self.conn.recv()
            if kind != "ready":
                self.proc.join(10)
                raise RuntimeError(f"simulator failed to start: {value}")
        self.startup_seconds = time.perf_counter() - t0

    def stop(self) -> dict:
        if self.sim is not None:
            self.sim.stop()
            return {}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            self.conn.send("stop")
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "cpu_seconds": round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 2),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        }


# ---------------------------------------------------------------------------- timing


@dataclass
class Phase:
    name: str
    group: str  # fetch | load | validate
    seconds: float = 0.0
    rows: int = 0
    cpu_seconds: float = 0.0
    rss_mb_after: float = 0.0
    detail: dict = field(default_factory=dict)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@contextmanager
def timed(phases: list[Phase], name: str, group: str, profile_to: Path | None):
    ph = Phase(name, group)
    prof = cProfile.Profile() if profile_to else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    try:
        yield ph
    finally:
        if prof:
            prof.disable()
        ph.seconds = time.perf_counter() - t0
        ph.cpu_seconds = time.process_time() - cpu0
        ph.rss_mb_after = _rss_mb()
        phases.append(ph)
        if prof:
            slug = re.sub(r"[^A-Za-z0-9]+", "_", name.split(" (")[0] if name.startswith("fetch") else name)
            path = profile_to.with_name(f"{profile_to.name}-{slug.strip('_')}.prof")
            prof.dump_stats(path)
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
            ph.detail["profile"] = str(path.relative_to(OUT.parent.parent))
            print(f"--- profile of {name} (by own time; full: {path})")
            print("\n".join(buf.getvalue().splitlines()[6:]))


# ---------------------------------------------------------------------------- the benchmark


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from safecredit.simulator import parse_faults

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    load_start = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: say how busy
    git_state = _git_state()
    OUT.mkdir(parents=True, exist_ok=True)
    scale, pps = plan(args.penalties)
    scale = args.scale or scale
    pps = args.pps if args.pps is not None else pps
    faults = parse_faults(args.faults)

    data_dir, meta, gen_seconds = ensure_data(args.seed, scale, pps)
    counts = meta["counts"]
    generated = sum(c.get(DATASET, 0) for c in counts.values())
    print(
        f"data: {data_dir.relative_to(OUT.parent.parent)} (scale {scale:,}, penalties_per_subject {pps}: "
        f"{generated:,} penalty rows; "
        + ("cached" if gen_seconds is None else f"generated in {gen_seconds:.1f} s")
        + ")"
    )

    work = OUT / f"run-ingest-{stamp}"
    raw_root, sources_path = work / "raw", work / "sources.yaml"
    work.mkdir(parents=True)
    profile_to = OUT / f"ingest-{stamp}" if args.profile else None
    phases: list[Phase] = []
    fetches: list[dict] = []
    sim_usage: dict = {}
    try:
        sim = SimHandle(args.sim, data_dir, args.seed, faults, sources_path)
        print(f"simulator ({args.sim}, faults: {args.faults}) up in {sim.startup_seconds:.1f} s")
        try:
            fetches = _fetch_all(phases, sources_path, raw_root, profile_to)
        finally:
            sim_usage = sim.stop()
        stage_counts, gx_summary = _load_and_validate(phases, raw_root, work / "warehouse.duckdb", profile_to)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    report = _report(
        args,
        stamp,
        data_dir,
        meta,
        scale,
        pps,
        gen_seconds,
        sim.startup_seconds,
        sim_usage,
        phases,
        fetches,
        stage_counts,
        gx_summary,
        str(work.relative_to(OUT.parent.parent)) if args.keep else None,
        git_state,
    )
    report["environment"]["loadavg_at_start"] = load_start
    path = OUT / f"ingest-{stamp}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    _print(report, path)
    return report


def _fetch_all(phases: list[Phase], sources_path: Path, raw_root: Path, profile_to: Path | None) -> list[dict]:
    from safecredit.config import load_sources
    from safecredit.connectors.client import DepartmentClient
    from safecredit.landing import pull

    depts = [d for d in load_sources(sources_path) if DATASET in d.datasets]
    extra = {}
    if "csv_workers" in inspect.signature(pull).parameters:  # as assets/ingest.py calls it
        from safecredit.policy import policy_for

        extra["csv_workers"] = policy_for(None).get("ingest.csv_parallel_days", 4)
    out = []
    for dept in depts:
        client = DepartmentClient(dept)  # what pull() makes itself; ours so we can read its stats
        try:
            with timed(phases, f"fetch {dept.id} ({dept.transport})", "fetch", profile_to) as ph:
                res = pull(dept, DATASET, raw_root, page_limit=PAGE_LIMIT, client=client, **extra)
                ph.rows = res.rows
        finally:
            client.close()
        st = client.stats
        row = {
            "department": dept.id,
            "transport": dept.transport,
            "status": res.status,
            **extra,
            "rows": res.rows,
            "duplicates": res.duplicates,
            "out_of_order": res.out_of_order,
            "requests": st.requests,
            "retries": st.retries,
            "throttled": st.throttled,
            "errors": st.errors[:5],
            "message": res.message_en,
        }
        ph.detail.update({k: row[k] for k in ("status", "requests", "retries", "throttled")})
        out.append(row)
        if res.status != "landed":
            print(f"warning: {dept.id}: {res.status}: {res.message_en}", file=sys.stderr)
    return out


def _load_and_validate(phases: list[Phase], raw_root: Path, db: Path, profile_to: Path | None) -> tuple[dict, dict]:
    from safecredit.contracts import load_contract
    from safecredit.gx_suites import validate_frame
    from safecredit.landing import landed_departments
    from safecredit.policy import policy_for
    from safecredit.staging import load_raw, stage
    from safecredit.warehouse import connect

    contract = load_contract(DATASET)
    hold_back = policy_for(None).get("publication.hold_back", {})
    con = connect(db)
    try:
        depts = landed_departments(raw_root, DATASET)
        with timed(phases, "load_raw (landing → raw)", "load", profile_to) as ph:
            ph.rows = load_raw(con, raw_root, depts, DATASET)
        with timed(phases, "stage (contracts)", "validate", profile_to) as ph:
            counts = stage(con, DATASET, hold_back)
            ph.rows = counts["raw"]
        cols = ", ".join(f.name for f in contract.fields if f.type != "list")  # as assets/staged.py
        with timed(phases, "GX frame (DuckDB → pandas)", "validate", profile_to) as ph:
            frame = con.sql(f"SELECT {cols} FROM staged.{DATASET}_current").to_arrow_table().to_pandas()
            ph.rows = len(frame)
        with timed(phases, "GX validate_frame", "validate", profile_to) as ph:
            gx = validate_frame(contract, frame)
            ph.rows = gx["rows"]
        del frame
        violations = dict(
            con.execute(
                "SELECT rule_id, count(*) FROM quality.violations WHERE dataset = ? GROUP BY 1 ORDER BY 2 DESC",
                [DATASET],
            ).fetchall()
        )
    finally:
        con.close()
    counts["violations_by_rule"] = violations
    return counts, gx


# ---------------------------------------------------------------------------- output


def _git_state() -> dict:
    """The commit measured, and files of the code under test that differ from it (at the start)."""

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=OUT.parent.parent, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", "safecredit", "contracts")
    return {
        "git": git("rev-parse", "--short", "HEAD").strip() or None,
        "git_dirty": [line[3:] for line in dirty.splitlines() if line.strip()],
    }


def _report(
    args,
    stamp,
    data_dir,
    meta,
    scale,
    pps,
    gen_seconds,
    sim_startup,
    sim_usage,
    phases,
    fetches,
    stage_counts,
    gx,
    kept,
    git_state,
) -> dict:
    import duckdb

    total = sum(p.seconds for p in phases)
    by_group = {g: sum(p.seconds for p in phases if p.group == g) for g in ("fetch", "load", "validate")}
    fetched = sum(f["rows"] for f in fetches)

    def rate(rows, secs):
        return round(rows / secs, 1) if secs > 0 else None

    cmd = "python -m bench.run " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("run.py") else None
    return {
        "benchmark": "ingest",
        "timestamp": stamp,
        "command": cmd,
        "parameters": {
            "penalties_target": args.penalties,
            "seed": args.seed,
            "scale": scale,
            "penalties_per_subject": pps,
            "faults": args.faults,
            "sim": args.sim,
            "page_limit": PAGE_LIMIT,
            "profile": bool(args.profile),
        },
        "data": {
            "dir": str(data_dir.relative_to(OUT.parent.parent)),
            "counts": meta["counts"],
            "penalties_generated": sum(c.get(DATASET, 0) for c in meta["counts"].values()),
            "generate_seconds": None if gen_seconds is None else round(gen_seconds, 2),
        },
        "simulator": {"mode": args.sim, "startup_seconds": round(sim_startup, 2), **sim_usage},
        "phases": [
            {
                "phase": p.name,
                "group": p.group,
                "seconds": round(p.seconds, 3),
                "rows": p.rows,
                "rows_per_s": rate(p.rows, p.seconds),
                "share": round(p.seconds / total, 4) if total else None,
                "cpu_seconds": round(p.cpu_seconds, 2),
                "peak_rss_mb_after": round(p.rss_mb_after, 1),
                **({"detail": p.detail} if p.detail else {}),
            }
            for p in phases
        ],
        "totals": {
            "seconds": round(total, 3),
            "rows": fetched,
            "end_to_end_rows_per_s": rate(fetched, total),
            "fetch_seconds": round(by_group["fetch"], 3),
            "fetch_rows_per_s": rate(fetched, by_group["fetch"]),
            "load_raw_seconds": round(by_group["load"], 3),
            "validation_seconds": round(by_group["validate"], 3),
            "share_fetch": round(by_group["fetch"] / total, 4) if total else None,
            "share_load_raw": round(by_group["load"] / total, 4) if total else None,
            "share_validation": round(by_group["validate"] / total, 4) if total else None,
        },
        "fetch": fetches,
        "http": {
            "requests": sum(f["requests"] for f in fetches),
            "retries": sum(f["retries"] for f in fetches),
            "throttled": sum(f["throttled"] for f in fetches),
        },
        "stage": stage_counts,
        "gx": {k: gx[k] for k in ("success", "evaluated", "successful", "rows", "suite", "failed")},
        "peak_rss_mb": round(_rss_mb(), 1),
        "environment": {
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            **git_state,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "kept": kept,
    }


def _print(r: dict, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 132))  # logs and pipes: no wrapping of the table
    t = Table(
        title=f"penalties ingestion + validation — {r['totals']['rows']:,} rows, faults: "
        f"{r['parameters']['faults']}, simulator: {r['simulator']['mode']}"
    )
    for col, just in (
        ("phase", "left"),
        ("seconds", "right"),
        ("rows", "right"),
        ("rows/s", "right"),
        ("share of total", "right"),
        ("CPU s", "right"),
        ("peak RSS MiB", "right"),
    ):
        t.add_column(col, justify=just)

    def fmt_rate(v):
        return "—" if v is None else f"{v:,.0f}"

    for p in r["phases"]:
        t.add_row(
            p["phase"],
            f"{p['seconds']:.2f}",
            f"{p['rows']:,}",
            fmt_rate(p["rows_per_s"]),
            f"{p['share']:.1%}",
            f"{p['cpu_seconds']:.1f}",
            f"{p['peak_rss_mb_after']:,.0f}",
        )
    tot = r["totals"]
    t.add_section()
    t.add_row(
        "ingestion (HTTP fetch + landing)",
        f"{tot['fetch_seconds']:.2f}",
        f"{tot['rows']:,}",
        fmt_rate(tot["fetch_rows_per_s"]),
        f"{tot['share_fetch']:.1%}",
        "",
        "",
    )
    t.add_row("load_raw", f"{tot['load_raw_seconds']:.2f}", "", "", f"{tot['share_load_raw']:.1%}", "", "")
    t.add_row(
        "validation (stage + GX)", f"{tot['validation_seconds']:.2f}", "", "", f"{tot['share_validation']:.1%}", "", ""
    )
    t.add_row(
        "[bold]total[/bold]",
        f"[bold]{tot['seconds']:.2f}[/bold]",
        f"{tot['rows']:,}",
        fmt_rate(tot["end_to_end_rows_per_s"]),
        "100.0%",
        "",
        f"{r['peak_rss_mb']:,.0f}",
    )
    con.print(t)

    f = Table(title="fetch: HTTP requests per department")
    for col in (
        "department",
        "transport",
        "status",
        "rows",
        "requests",
        "retries",
        "throttled (429)",
        "duplicates dropped",
    ):
        f.add_column(col, justify="left" if col in ("department", "transport", "status") else "right")
    for x in r["fetch"]:
        f.add_row(
            x["department"],
            x["transport"],
            x["status"],
            f"{x['rows']:,}",
            f"{x['requests']:,}",
            f"{x['retries']:,}",
            f"{x['throttled']:,}",
            f"{x['duplicates']:,}",
        )
    con.print(f)
    s, gx, sim = r["stage"], r["gx"], r["simulator"]
    con.print(
        f"staged: {s['raw']:,} raw → {s['staged_versions']:,} staged versions, {s['current']:,} current, "
        f"{s['quarantined']:,} quarantined, {len(s['held_back'])} batches held back"
    )
    con.print(
        f"GX suite {gx['suite']}: {gx['successful']}/{gx['evaluated']} expectations passed over {gx['rows']:,} rows"
    )
    con.print(
        f"peak RSS (this process): {r['peak_rss_mb']:,.0f} MiB"
        + (
            f"; simulator child: {sim['peak_rss_mb']:,.0f} MiB peak, {sim['cpu_seconds']:.1f} CPU s"
            if "peak_rss_mb" in sim
            else ""
        )
        + f"; simulator start-up {sim['startup_seconds']:.1f} s (not in total)"
    )
    env = r["environment"]
    con.print(
        f"code: git {env.get('git')}"
        + (f" + uncommitted changes in {', '.join(env['git_dirty'])}" if env.get("git_dirty") else " (clean tree)")
        + f"; load average at start {env.get('loadavg_at_start')}, at end {env.get('loadavg_at_end')}"
    )
    con.print(f"share of time spent in validation (stage + GX) / total: [bold]{tot['share_validation']:.1%}[/bold]")
    con.print(f"written {path}")
