"""A provincial or national exchange rebuilt from its raw landing, with the independent floor beside it.

``python -m bench.national [--scale 10000000] [--memory-limit 8GB] [--keep] [--resume DIR]``

Phases, each timed (wall, CPU of this process, peak RSS, the DuckDB spill's peak size, the load
average) and written to ``bench/out/national-<timestamp>.json`` as soon as it ends, so an
interrupted run keeps what it measured (``--resume DIR`` continues a kept run after its last
finished phase):

1. **data** (fixture, cached): ``safecredit.generator`` at ``--scale`` subjects, the same plan as
   ``bench.rules`` (10M subjects, ≈ 20M penalties, ≈ 1M accidents).
2. **floor**: ``../shared/perf/gen.py`` at the same sizes (cached) and ``floor.py`` on it, a child
   process measured by ``os.wait4``: the yardstick, in the same invocation.
3. **landing** (fixture): the generated records written in the connector's landing format
   (``bench.landing_writer``: JSON pages, CSV days, manifests) — what a first national pull leaves.
4. **load_raw**: ``safecredit.raw_load.load_raw`` per dataset, exactly the pipeline's.
5. **staging**: ``safecredit.staging.stage`` per dataset with the policy's hold-back thresholds.
6. **rules**: ``rules.run_subjects`` + ``rules.run_rules`` with the departments' kinds.
7. **gate**: the publication gate's row checks (unique ids, no full ID number) over every feed.
8. **publication**: ``Publisher.publish`` of every feed into a fresh exports root (version 1).
9. **contract suites**: the Great Expectations suites over every staged table, streamed in batches
   (``gx_suites.validate_reader``), as the ``contract_suite`` checks run them.

"rebuild" = load_raw + staging + rules + gate + publication + contract suites: what ``safecredit
replay`` does at this size. Needs ≈ 60 GB free under bench/out (landing ≈ 15 GB, warehouse, spill,
one version of exports) — the run stops before a phase when less than ``--min-free-gb`` is free.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

from bench.ingest import ensure_data
from bench.rules import DEFAULT_PPS, DEFAULT_SCALE, DEFAULT_START, OUT, PERSON_SALT, _git_state

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT.parent / "shared" / "perf"
PHASES = ("floor", "landing", "load_raw", "staging", "rules", "gate", "publication", "contract_suites")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=int, default=DEFAULT_SCALE, help=f"registered subjects (default {DEFAULT_SCALE:,})")
    p.add_argument("--penalties-per-subject", type=float, default=DEFAULT_PPS, metavar="P")
    p.add_argument("--start", default=DEFAULT_START, metavar="YYYY-MM-DD", help="first day of the generated data")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit (default 8GB: the issue's bound)")
    p.add_argument("--fetch-rows", type=int, default=2_000_000, help="records per landed JSON fetch")
    p.add_argument("--skip", action="append", default=[], choices=PHASES, help="leave a phase out (repeatable)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR", help="continue a kept run in DIR")
    p.add_argument("--keep", action="store_true", help="keep landing, warehouse and exports (printed)")
    p.add_argument("--feeds", type=lambda v: v.split(","), default=None, help="publish only these feeds (a,b,…)")
    p.add_argument(
        "--suite-rows", type=int, default=None, help="run the contract suites over the first N rows of each table"
    )
    p.add_argument("--drop-landing", action="store_true", help="remove the landing once load_raw has read it")
    p.add_argument(
        "--publish-separately", action="store_true", help="publish and measure one feed at a time, then remove it"
    )
    p.add_argument("--min-free-gb", type=float, default=8.0, help="stop before a phase below this free space")


# ---------------------------------------------------------------------------- measuring


def _rss_kb(pid: str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                total += os.stat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


class Sampler:
    """Peak RSS, the spill directory's peak size and the load average, every half second."""

    def __init__(self, spill: Path):
        self.spill, self._stop = spill, threading.Event()
        self.reset()
        self._t = threading.Thread(target=self._run, name="national-sampler", daemon=True)
        self._t.start()

    def reset(self) -> None:
        self.peak_kb, self.spill_peak, self.loads = _rss_kb(), 0, [os.getloadavg()[0]]

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_kb = max(self.peak_kb, _rss_kb())
            self.spill_peak = max(self.spill_peak, _tree_bytes(self.spill) if self.spill.exists() else 0)
            self.loads.append(os.getloadavg()[0])

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def _cpu() -> float:
    import resource

    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class Report:
    """The run's JSON, rewritten after every phase."""

    def __init__(self, path: Path, doc: dict):
        self.path, self.doc = path, doc

    def save(self) -> None:
        self.doc["environment"]["loadavg_now"] = [round(x, 2) for x in os.getloadavg()]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def done(self, name: str) -> bool:
        return any(p["name"] == name for p in self.doc["phases"])

    @contextmanager
    def phase(self, name: str, sampler: Sampler, work: Path, min_free_gb: float):
        free = shutil.disk_usage(work).free / 2**30
        if free < min_free_gb:
            raise SystemExit(f"{name}: only {free:.1f} GB free under {work} (--min-free-gb {min_free_gb})")
        print(f"== {name} …", flush=True)
        sampler.reset()
        entry = {"name": name, "detail": {}}
        t0, c0 = time.perf_counter(), _cpu()
        yield entry["detail"]
        entry.update(
            seconds=round(time.perf_counter() - t0, 2),
            cpu_seconds=round(_cpu() - c0, 2),
            peak_rss_mib=round(max(sampler.peak_kb, _rss_kb()) / 1024),
            spill_peak_gib=round(sampler.spill_peak / 2**30, 2),
            load_mean=round(sum(sampler.loads) / len(sampler.loads), 1),
            disk_gib={k: round(_tree_bytes(work / k) / 2**30, 2) for k in ("raw", "warehouse", "exports")},
        )
        self.doc["phases"].append(entry)
        self.save()
        print(
            f"   {name}: {entry['seconds']:.1f} s, CPU {entry['cpu_seconds']:.1f} s, peak RSS "
            f"{entry['peak_rss_mib']:,} MiB, spill {entry['spill_peak_gib']} GiB, load {entry['load_mean']}",
            flush=True,
        )


# ---------------------------------------------------------------------------- the floor


def _floor(counts: dict, detail: dict, as_of: str) -> None:
    """../shared/perf's generator (cached) and floor on the same sizes, children measured by wait4."""
    if not (PERF / "floor.py").exists():
        detail["skipped"] = f"{PERF} not found"
        return
    data = OUT / f"perf-data-{counts['subjects']}"
    args = ["--subjects", counts["subjects"], "--penalties", counts["penalties"], "--accidents", counts["accidents"]]
    if not (data / "gen-meta.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        detail["gen"] = _child([sys.executable, str(PERF / "gen.py"), *map(str, args), "--out", str(data)])
    out = OUT / "perf-floor-out"
    detail["floor"] = _child(
        [sys.executable, str(PERF / "floor.py"), "--data", str(data), "--as-of", as_of, "--out", str(out)]
    )
    shutil.rmtree(out, ignore_errors=True)


def _child(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output[-2000:]}")
    return {
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
    }


# ---------------------------------------------------------------------------- the run


def _warehouse(work: Path, memory_limit: str):
    from safecredit.warehouse import connect

    con = connect(work / "warehouse" / "warehouse.duckdb")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{work / 'warehouse' / 'spill'}'")
    con.execute("SET enable_progress_bar = false")
    return con


def _departments(meta: dict):
    from safecredit.config import Department

    return [
        Department(
            d["id"],
            d.get("name", d["id"]),
            "http://departments.invalid",
            "",
            d["transports"][0],
            tuple(d["datasets"]),
            kind=d.get("kind", "other"),
        )
        for d in meta["departments"]
    ]


def run(args: argparse.Namespace) -> dict:
    import duckdb

    from bench.landing_writer import write_landing
    from safecredit import rules as engine
    from safecredit.config import DATASETS
    from safecredit.contracts import load_contract
    from safecredit.gx_suites import BATCH_ROWS, validate_reader
    from safecredit.policy import policy_for
    from safecredit.publish import Publisher, gate
    from safecredit.publish.lean import feed_queries
    from safecredit.raw_load import load_raw
    from safecredit.staging import stage

    data_dir, meta, gen_seconds = ensure_data(
        args.seed, args.scale, args.penalties_per_subject, date.fromisoformat(args.start)
    )
    counts = {ds: sum(c.get(ds, 0) for c in meta["counts"].values()) for ds in DATASETS}
    as_of = date.fromisoformat(meta["end"])
    policy = policy_for(as_of)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    work = args.resume or OUT / f"national-{stamp}"
    (work / "warehouse").mkdir(parents=True, exist_ok=True)
    path = work / "report.json"
    doc = (
        json.loads(path.read_text(encoding="utf-8"))
        if path.exists()
        else {
            "benchmark": "national",
            "command": "python -m bench.national " + " ".join(sys.argv[1:]),
            "parameters": {**vars(args), "as_of": as_of.isoformat(), "policy_version": policy.version},
            "data": {"dir": str(data_dir), "generated_rows": counts, "generation_seconds": gen_seconds},
            "phases": [],
            "environment": {
                "python": sys.version.split()[0],
                "duckdb": duckdb.__version__,
                "cpus": os.cpu_count(),
                **_git_state(),
                "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            },
        }
    )
    report = Report(path, doc)
    report.save()
    print(f"data: {data_dir.name} — " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
    sampler = Sampler(work / "warehouse" / "spill")
    wanted = [p for p in PHASES if p not in args.skip and not report.done(p)]
    con = _warehouse(work, args.memory_limit)
    raw = work / "raw"
    try:
        for name in wanted:
            with report.phase(name, sampler, work, args.min_free_gb) as detail:
                if name == "floor":
                    floor_counts = {
                        "subjects": meta["scale"],
                        "penalties": counts["penalties"],
                        "accidents": counts["accidents"],
                    }
                    detail["sizes"] = floor_counts
                    _floor(floor_counts, detail, as_of.isoformat())
                elif name == "landing":
                    shutil.rmtree(raw, ignore_errors=True)
                    with duckdb.connect() as scratch:
                        scratch.execute(f"SET memory_limit = '{args.memory_limit}'")
                        scratch.execute(f"SET temp_directory = '{work / 'landing-spill'}'")
                        detail["rows"] = write_landing(scratch, data_dir, raw, meta["departments"], args.fetch_rows)
                    shutil.rmtree(work / "landing-spill", ignore_errors=True)
                elif name == "load_raw":
                    depts = {ds: sorted(p.name for p in raw.iterdir() if (p / ds).is_dir()) for ds in DATASETS}
                    detail["rows"] = {ds: load_raw(con, raw, depts[ds], ds) for ds in DATASETS}
                    con.execute("CHECKPOINT")
                    detail["landing_gib"] = round(_tree_bytes(raw) / 2**30, 2)
                    if args.drop_landing:  # nothing after load_raw reads it: room for the exports
                        shutil.rmtree(raw, ignore_errors=True)
                elif name == "staging":
                    hold = policy.get("publication.hold_back", {})
                    for ds in DATASETS:
                        t0 = time.perf_counter()
                        c = stage(con, ds, hold)
                        detail[ds] = {k: c[k] for k in ("raw", "staged_versions", "current", "quarantined")}
                        detail[ds]["seconds"] = round(time.perf_counter() - t0, 1)
                        print(f"   stage {ds}: {detail[ds]}", flush=True)
                    con.execute("CHECKPOINT")
                elif name == "rules":
                    depts = _departments(meta)
                    for label, fn in (("subjects", engine.run_subjects), ("rules", engine.run_rules)):
                        t0 = time.perf_counter()
                        kw = {"departments": depts} if label == "rules" else {}
                        fn(con, as_of, policy, PERSON_SALT, **kw)
                        detail[f"{label}_seconds"] = round(time.perf_counter() - t0, 1)
                    con.execute("CHECKPOINT")
                    detail["rows"] = {
                        f: con.execute(f"SELECT count(*) FROM ({gate.feed_query(con, f)})").fetchall()[0][0]
                        for f in gate.present_feeds(con)
                    }
                elif name == "gate":
                    for feed in gate.present_feeds(con):
                        t0 = time.perf_counter()
                        fails = gate.duplicate_ids(con, feed) + gate.full_id_numbers(con, feed)
                        detail[feed] = {"seconds": round(time.perf_counter() - t0, 1), "failures": fails}
                elif name == "publication":
                    # what the published_feeds asset publishes (lean feeds split from the rule tables)
                    feeds = {f: q for f, q in feed_queries(con).items() if not args.feeds or f in args.feeds}
                    # one version of every feed at once, or (--publish-separately, when the disk
                    # cannot hold a whole version) each feed published alone, measured, then removed
                    groups = [[f] for f in feeds] if args.publish_separately else [list(feeds)]
                    detail.update(separately=args.publish_separately, rows={}, feed_bytes={}, feed_seconds={})
                    for group in groups:
                        shutil.rmtree(work / "exports", ignore_errors=True)
                        pub = Publisher(work / "exports", work / "keys", max_shrink=None)
                        t0 = time.perf_counter()
                        free = shutil.disk_usage(work).free
                        try:
                            result = pub.publish(
                                {f: con.sql(feeds[f]) for f in group},
                                as_of=as_of,
                                policy_version=policy.version,
                                generated_at=datetime(2026, 11, 23, 2, tzinfo=timezone.utc),
                            )
                        except OSError as exc:  # one feed's files outgrew the disk: say so, go on
                            if exc.errno != errno.ENOSPC or not args.publish_separately:
                                raise
                            detail.setdefault("no_space", {})[",".join(group)] = {
                                "free_gib_before": round(free / 2**30, 1),
                                "seconds": round(time.perf_counter() - t0, 1),
                            }
                            print(f"   {group}: no space left ({free / 2**30:.1f} GiB free before it)", flush=True)
                            shutil.rmtree(work / "exports", ignore_errors=True)
                            continue
                        if not result.ok:
                            detail.setdefault("reasons", []).extend(result.reasons or [])
                        detail["rows"].update(result.rows)
                        detail["feed_bytes"].update({f: _tree_bytes(work / "exports" / f) for f in group})
                        detail["feed_seconds"][",".join(group)] = round(time.perf_counter() - t0, 1)
                        print(f"   published {group}: {detail['feed_seconds'][','.join(group)]} s", flush=True)
                        if args.publish_separately:
                            shutil.rmtree(work / "exports", ignore_errors=True)
                elif name == "contract_suites":
                    for ds in DATASETS:
                        t0 = time.perf_counter()
                        contract = load_contract(ds)
                        cols = ", ".join(f.name for f in contract.fields if f.type != "list")
                        total = con.execute(f"SELECT count(*) FROM staged.{ds}_current").fetchall()[0][0]
                        cap = f" LIMIT {args.suite_rows}" if args.suite_rows else ""
                        reader = con.sql(f"SELECT {cols} FROM staged.{ds}_current{cap}").to_arrow_reader(BATCH_ROWS)
                        s = validate_reader(contract, reader)
                        took = time.perf_counter() - t0
                        detail[ds] = {
                            "seconds": round(took, 1),
                            "rows": s["rows"],
                            "rows_in_force": total,
                            # --suite-rows: the whole table's time at the measured rate (marked as such)
                            "seconds_for_all_rows": round(took * total / max(s["rows"], 1), 1),
                            "extrapolated": s["rows"] < total,
                            "success": s["success"],
                            "failed": s["failed"],
                        }
                        print(f"   suite {ds}: {detail[ds]['rows']:,} rows in {detail[ds]['seconds']} s", flush=True)
    finally:
        con.close()
        sampler.stop()
    _summarise(report)
    if not args.keep:
        for k in ("raw", "warehouse", "exports", "keys"):
            shutil.rmtree(work / k, ignore_errors=True)
    print(f"report: {path}" + ("" if args.keep else " (landing, warehouse and exports removed)"))
    return report.doc


def _summarise(report: Report) -> None:
    phases = {p["name"]: p for p in report.doc["phases"]}
    rebuild = [n for n in ("load_raw", "staging", "rules", "gate", "publication", "contract_suites") if n in phases]
    floor = (phases.get("floor", {}).get("detail", {}).get("floor") or {}).get("seconds")
    rules = phases.get("rules", {}).get("seconds")
    pub = phases.get("publication", {}).get("detail", {})
    suites = {k: v for k, v in phases.get("contract_suites", {}).get("detail", {}).items() if isinstance(v, dict)}
    landing = phases.get("load_raw", {}).get("detail", {}).get("landing_gib") or 0.0
    warehouse = max((p["disk_gib"]["warehouse"] for p in phases.values()), default=0.0)
    spill = max((p["spill_peak_gib"] for p in phases.values()), default=0.0)
    version = round(sum(phases.get("publication", {}).get("detail", {}).get("feed_bytes", {}).values()) / 2**30, 2)
    report.doc["summary"] = {
        "rebuild_phases": rebuild,
        "rebuild_seconds": round(sum(phases[n]["seconds"] for n in rebuild), 1),
        "rebuild_cpu_seconds": round(sum(phases[n]["cpu_seconds"] for n in rebuild), 1),
        "rebuild_peak_rss_mib": max((phases[n]["peak_rss_mib"] for n in rebuild), default=None),
        "spill_peak_gib": max((phases[n]["spill_peak_gib"] for n in rebuild), default=None),
        # landing + warehouse + spill + one version of exports, each at its largest
        "landing_gib": landing,
        "warehouse_gib": warehouse,
        "version_gib": version,
        "disk_in_all_gib": round(landing + warehouse + spill + version, 1),
        "publication_rows_per_second": round(
            sum(pub.get("rows", {}).values()) / max(sum(pub.get("feed_seconds", {}).values()), 0.001)
        )
        if pub
        else None,
        "publication_bytes_per_row": round(
            sum(pub.get("feed_bytes", {}).values()) / max(sum(pub.get("rows", {}).values()), 1)
        )
        if pub
        else None,
        "contract_suites_seconds_all_rows": round(sum(v["seconds_for_all_rows"] for v in suites.values()), 1)
        if suites
        else None,
        "floor_seconds": floor,
        "rules_over_floor": round(rules / floor, 1) if rules and floor else None,
    }
    report.save()
    print(json.dumps(report.doc["summary"], indent=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
