"""The rules engine at city scale, against a hand-written floor.

``python -m bench.rules [--scale N] [--penalties-per-subject P] [--start YYYY-MM-DD] [--keep]``

1. generate department data (cached under bench/out/data/; a fixture, reported, not timed);
2. ``raw.<dataset>`` straight from the generated Parquet, exactly the columns and strings
   ``staging.load_raw`` would land (no HTTP: this benchmark is about the rules), one
   ``CREATE TABLE … AS`` / ``INSERT … SELECT`` per department;
3. ``staging.stage`` of every dataset (timed: "staging");
4. the rules engine: ``rules.run_subjects`` + ``rules.run_rules``, each file run through their
   ``run_file`` hook statement by statement, every statement timed;
5. EXPLAIN ANALYZE of the slowest engine statements (re-run after the timing, JSON plans);
6. the floor, bench/rules_floor.sql, on a fresh connection (the engine's temp tables would hold
   its memory) after rules.prepare_params: one hand-written script computing the same list and
   credit scores the most direct way, on the same staged tables; its agreement with the engine;
7. a rich table and bench/out/rules-<timestamp>.json.

Peak RSS and the load average are sampled every 0.2 s during each phase: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from bench.ingest import ensure_data
from safecredit.config import DATASETS  # every dataset the pipeline stages, listing decisions included

OUT = Path(__file__).resolve().parent / "out"
FLOOR_SQL = Path(__file__).resolve().parent / "rules_floor.sql"
PERSON_SALT = "bench-rules-salt"

# Full size: 10M registered subjects; ≈ 2.0 penalty rows per subject (20M), and a window of
# 3.6 years so that accidents (≈ 0.0277 per subject-year on generator 1.0.0) come to ≈ 1M.
DEFAULT_SCALE = 10_000_000
DEFAULT_PPS = 1.98
DEFAULT_START = "2023-04-15"


def add_arguments(p) -> None:
    p.add_argument("--scale", type=int, default=DEFAULT_SCALE, help=f"registered subjects (default {DEFAULT_SCALE:,})")
    p.add_argument(
        "--penalties-per-subject",
        type=float,
        default=DEFAULT_PPS,
        metavar="P",
        help=f"generator penalties_per_subject (default {DEFAULT_PPS})",
    )
    p.add_argument(
        "--start",
        default=DEFAULT_START,
        metavar="YYYY-MM-DD",
        help=f"first day of generated data (default {DEFAULT_START}; end is the generator's)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--memory-limit", default="16GB", help="DuckDB memory_limit (default 16GB)")
    p.add_argument(
        "--explain",
        type=int,
        default=5,
        metavar="K",
        help="EXPLAIN ANALYZE the K slowest engine statements after timing (default 5; 0: none)",
    )
    p.add_argument("--no-floor", action="store_true", help="skip the floor and the agreement check")
    p.add_argument(
        "--stage-only",
        action="store_true",
        help="stop after staging (with --keep: a warehouse for later --warehouse runs)",
    )
    p.add_argument(
        "--statement-setting",
        action="append",
        default=[],
        metavar="LABEL:NAME=VALUE",
        help="SET NAME = VALUE around one engine statement only (LABEL as in the report, e.g. "
        "'TABLE rules.trigger_versions:disabled_optimizers=build_side_probe_side'); repeatable",
    )
    p.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        metavar="PATH",
        help="reuse a kept, already staged warehouse (skips raw + staging)",
    )
    p.add_argument("--keep", action="store_true", help="keep the warehouse under bench/out/rules-<ts>/")


# ---------------------------------------------------------------------------- measuring


class Sampler:
    """Peak RSS (VmRSS of this process) and the 1-minute load average, sampled in a thread."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak_kb, self.loads = every, 0, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._t.start()

    @staticmethod
    def rss_kb() -> int:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self.rss_kb())
            self.loads.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def reset(self) -> None:
        self.peak_kb, self.loads = self.rss_kb(), [os.getloadavg()[0]]

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


@dataclass
class Phase:
    name: str
    group: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    load_mean: float = 0.0
    load_max: float = 0.0
    detail: dict = field(default_factory=dict)


@contextmanager
def timed(phases: list[Phase], sampler: Sampler, name: str, group: str):
    ph = Phase(name, group)
    sampler.reset()
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        yield ph
    finally:
        ph.seconds = time.perf_counter() - t0
        ph.cpu_seconds = time.process_time() - cpu0
        ph.peak_rss_mb = max(sampler.peak_kb, sampler.rss_kb()) / 1024
        loads = sampler.loads or [os.getloadavg()[0]]
        ph.load_mean, ph.load_max = sum(loads) / len(loads), max(loads)
        phases.append(ph)
        print(
            f"  {name}: {ph.seconds:.2f} s (CPU {ph.cpu_seconds:.1f} s, peak RSS {ph.peak_rss_mb:,.0f} MiB, "
            f"load {ph.load_mean:.1f})",
            flush=True,
        )


_LABEL = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(TABLE|VIEW|MACRO|SCHEMA)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)",
    re.I,
)


def statements(con, sql: str) -> list[tuple[str, object]]:
    """(label, statement) for every statement of a script, label = what it creates."""
    out = []
    for i, st in enumerate(con.extract_statements(sql)):
        m = _LABEL.search(st.query)
        out.append((f"{m.group(1).upper()} {m.group(2)}" if m else f"#{i + 1} {st.type.name}", st))
    return out


class StatementFailed(Exception):
    """A statement of a script failed (out of memory, …); the timings so far are kept."""


def run_script(con, path: Path, timings: list[dict], sampler: Sampler, settings: dict | None = None) -> float:
    """Every statement of one file, each timed; returns the file's seconds. `settings`: label →
    [(name, value)] SET around that statement only (and RESET after it)."""
    t_file = time.perf_counter()
    for label, st in statements(con, path.read_text(encoding="utf-8")):
        sampler_peak0 = sampler.peak_kb
        extra = (settings or {}).get(label, [])
        for name, value in extra:
            con.execute(f"SET {name} = '{value}'")
        cpu0, t0 = time.process_time(), time.perf_counter()
        entry = {"file": path.name, "statement": label, "sql": st.query.strip()}
        if extra:
            entry["settings"] = {n: v for n, v in extra}
        timings.append(entry)
        try:
            con.execute(st)
        except Exception as exc:  # noqa: BLE001 — duckdb.Error: report which statement and why
            entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            raise StatementFailed(f"{path.name}: {label}: {entry['error']}") from exc
        finally:
            entry.update(
                {
                    "seconds": time.perf_counter() - t0,
                    "cpu_seconds": time.process_time() - cpu0,
                    "peak_rss_mb_so_far": max(sampler_peak0, sampler.peak_kb) / 1024,
                }
            )
            for name, _ in extra:
                con.execute(f"RESET {name}")
    return time.perf_counter() - t_file


# ---------------------------------------------------------------------------- data and warehouse


def load_raw_from_parquet(con, data_dir: Path, dataset: str, landed_at: str) -> int:
    """``raw.<dataset>`` as ``staging.load_raw`` would build it from a landing of the same records:
    department, fetch_id, seq (0-based, file order), landed_at, the envelope and every contract
    code as VARCHAR ('' → NULL, as ``_as_text``), unknown columns as a sorted JSON object in
    extra_fields. One fetch per department; departments in name order, rows in (fetch, seq) order."""
    from safecredit.contracts import ENVELOPE, load_contract

    contract = load_contract(dataset)
    known = list(ENVELOPE) + list(contract.codes)
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(f"DROP TABLE IF EXISTS raw.{dataset}")
    first = True
    for dept_dir in sorted(p for p in data_dir.iterdir() if (p / dataset).is_dir()):
        dept = dept_dir.name
        files = sorted(str(f) for f in (dept_dir / dataset).glob("*.parquet"))
        # seq = the row's position over the department's files in name order: each file's row
        # offset from the Parquet footers, so no window and no sort over the data
        offsets, n = [], 0
        for f in files:
            offsets.append(n)
            n += con.execute("SELECT num_rows FROM parquet_file_metadata(?)", [f]).fetchone()[0]
        case = "CASE filename " + " ".join(f"WHEN '{f}' THEN {o}" for f, o in zip(files, offsets)) + " END"
        src = f"read_parquet({files!r}, filename = true, file_row_number = true)"
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()} - {
            "filename",
            "file_row_number",
        }
        cols = [
            f'nullif(CAST("{c}" AS VARCHAR), \'\') AS "{c}"' if c in present else f'NULL::VARCHAR AS "{c}"'
            for c in known
        ]
        extra = sorted(present - set(known))
        extra_sql = (
            (
                "CASE WHEN "
                + " OR ".join(f'"{c}" IS NOT NULL' for c in extra)
                + " THEN to_json(json_object("
                + ", ".join(f"'{c}', \"{c}\"" for c in extra)
                + "))::VARCHAR END"
            )
            if extra
            else "NULL::VARCHAR"
        )
        select = (
            f"SELECT '{dept}' AS department, '{dept}-bench-0001' AS fetch_id, "
            f"CAST({case} + file_row_number AS BIGINT) AS seq, "
            f"'{landed_at}' AS landed_at, {', '.join(cols)}, {extra_sql} AS extra_fields FROM {src}"
        )
        if first:
            con.execute(f"CREATE TABLE raw.{dataset} AS {select}")
            first = False
        else:
            con.execute(f"INSERT INTO raw.{dataset} {select}")
    if first:  # no department serves it: an empty table of the right shape
        con.execute(
            f"CREATE TABLE raw.{dataset} (department VARCHAR, fetch_id VARCHAR, seq BIGINT, landed_at VARCHAR, "
            + ", ".join(f'"{c}" VARCHAR' for c in known)
            + ", extra_fields VARCHAR)"
        )
    return con.execute(f"SELECT count(*) FROM raw.{dataset}").fetchone()[0]


def open_warehouse(path: Path, memory_limit: str):
    from safecredit.warehouse import connect

    con = connect(path)
    tmp = path.parent / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{tmp}'")
    con.execute("SET enable_progress_bar = false")
    return con


# ---------------------------------------------------------------------------- agreement

AGREEMENT_SQL = {
    # an entry is the same when its id, subject, ground, decision and status agree
    "blacklist": """
        WITH e AS (SELECT entry_id, subject_id, ground, authority_code, decision_no, status FROM rules.blacklist),
             f AS (SELECT entry_id, subject_id, ground, authority_code, decision_no, status FROM floor.blacklist)
        SELECT count(*) FILTER (WHERE e.entry_id IS NOT NULL) AS engine,
               count(*) FILTER (WHERE f.entry_id IS NOT NULL) AS floor,
               count(*) FILTER (WHERE e.entry_id IS NOT NULL AND f.entry_id IS NOT NULL
                                AND e.status = f.status AND e.subject_id = f.subject_id AND e.ground = f.ground
                                AND e.decision_no IS NOT DISTINCT FROM f.decision_no) AS agree,
               count(*) FILTER (WHERE f.entry_id IS NULL) AS engine_only,
               count(*) FILTER (WHERE e.entry_id IS NULL) AS floor_only,
               count(*) FILTER (WHERE e.entry_id IS NOT NULL AND f.entry_id IS NOT NULL
                                AND e.status <> f.status) AS status_differs
        FROM e FULL JOIN f USING (entry_id)""",
    "credit_scores": """
        SELECT count(*) FILTER (WHERE e.uscc IS NOT NULL) AS engine,
               count(*) FILTER (WHERE f.uscc IS NOT NULL) AS floor,
               count(*) FILTER (WHERE e.score = f.score AND e.grade = f.grade) AS agree,
               count(*) FILTER (WHERE f.uscc IS NULL) AS engine_only,
               count(*) FILTER (WHERE e.uscc IS NULL) AS floor_only,
               count(*) FILTER (WHERE e.score <> f.score) AS score_differs,
               count(*) FILTER (WHERE e.grade <> f.grade) AS grade_differs
        FROM rules.credit_scores e FULL JOIN floor.credit_scores f USING (uscc)""",
}

DIFF_SAMPLES = {
    "blacklist": """
        SELECT coalesce(e.entry_id, f.entry_id) AS entry_id, e.ground, f.ground AS floor_ground, e.status,
               f.status AS floor_status, coalesce(e.subject_id, f.subject_id) AS subject_id,
               coalesce(e.decision_no, f.decision_no) AS decision_no
        FROM rules.blacklist e FULL JOIN floor.blacklist f USING (entry_id)
        WHERE e.entry_id IS NULL OR f.entry_id IS NULL OR e.status <> f.status OR e.ground <> f.ground
        ORDER BY 1 LIMIT 10""",
    "credit_scores": """
        SELECT coalesce(e.uscc, f.uscc) AS uscc, e.score, f.score AS floor_score, e.grade, f.grade AS floor_grade,
               e.forced_reasons
        FROM rules.credit_scores e FULL JOIN floor.credit_scores f USING (uscc)
        WHERE e.uscc IS NULL OR f.uscc IS NULL OR e.score <> f.score OR e.grade <> f.grade
        ORDER BY 1 LIMIT 10""",
}


def agreement(con) -> dict:
    out = {}
    for name, sql in AGREEMENT_SQL.items():
        cur = con.execute(sql)
        row = dict(zip([d[0] for d in cur.description], cur.fetchone()))
        union = row["engine"] + row["floor_only"]
        row["agreement"] = row["agree"] / union if union else 1.0
        cur = con.execute(DIFF_SAMPLES[name])
        cols = [d[0] for d in cur.description]
        row["differences_sample"] = [
            {c: (v if isinstance(v, (int, float, str, type(None), list)) else str(v)) for c, v in zip(cols, r)}
            for r in cur.fetchall()
        ]
        out[name] = row
    return out


# ---------------------------------------------------------------------------- the benchmark

SAME_SCOPE = ("subjects/", "prepare_params", "10_", "20_", "30_", "50_")


def _same_scope(file: str) -> bool:
    return file.startswith(SAME_SCOPE)


def operators(plan: dict) -> list[dict]:
    """The operators of a JSON EXPLAIN ANALYZE, depth-first: own time, rows out, the key extra info."""
    out: list[dict] = []

    def info(x: dict) -> str:
        keep = []
        for k, v in (x.get("extra_info") or {}).items():
            if k in ("Estimated Cardinality",):
                continue
            v = ", ".join(v) if isinstance(v, list) else str(v)
            keep.append(f"{k}: {v[:160]}")
        return "; ".join(keep)[:400]

    def walk(node: dict, depth: int) -> None:
        for child in node.get("children", []):
            if child.get("type") not in ("RESULT_COLLECTOR", "EXPLAIN_ANALYZE"):
                out.append(
                    {
                        "type": child.get("type"),
                        "seconds": float(child.get("timing") or 0),
                        "rows": int(child.get("operator_cardinality", child.get("intermediate_rows", 0)) or 0),
                        "info": info(child),
                        "depth": depth,
                    }
                )
                walk(child, depth + 1)
            else:
                walk(child, depth)

    walk({"children": plan.get("operator", plan.get("children", []))}, 0)
    return out


class _StageOnly(Exception):
    pass


def _git_state() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "rules", "safecredit"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
        return {"git": head, "git_dirty": sorted(ln[3:] for ln in dirty if ln.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def _count(con, table: str) -> int | None:
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except Exception:  # noqa: BLE001 — a table a rule file did not make
        return None


def run(args: argparse.Namespace) -> dict:
    import duckdb

    from safecredit import rules as engine
    from safecredit.policy import policy_for
    from safecredit.staging import stage

    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    load_start = [round(x, 2) for x in os.getloadavg()]
    OUT.mkdir(parents=True, exist_ok=True)
    start = date.fromisoformat(args.start)
    sampler = Sampler()
    phases: list[Phase] = []

    data_dir, meta, gen_seconds = ensure_data(args.seed, args.scale, args.penalties_per_subject, start)
    counts = {ds: sum(c.get(ds, 0) for c in meta["counts"].values()) for ds in DATASETS}
    as_of = date.fromisoformat(meta["end"])
    policy = policy_for(as_of)
    print(
        f"data: {data_dir.relative_to(OUT.parent.parent)} — "
        + ", ".join(f"{ds} {n:,}" for ds, n in counts.items())
        + f"; {meta['start']} … {meta['end']}; "
        + ("cached" if gen_seconds is None else f"generated in {gen_seconds:.0f} s"),
        flush=True,
    )

    if args.warehouse:
        work, db = args.warehouse.parent, args.warehouse
    else:
        work = OUT / f"rules-{stamp}"
        db = work / "warehouse.duckdb"
        work.mkdir(parents=True)
    con = open_warehouse(db, args.memory_limit)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    stage_counts = {}
    timings: list[dict] = []
    per_file: dict[str, float] = {}
    floor_timings, explains, agree, tables, status, grades = [], [], {}, {}, {}, {}
    engine_seconds = floor_seconds = None
    engine_failed = None
    try:
        if not args.warehouse:
            landed_at = f"{meta['end']}T23:00:00+08:00"
            with timed(phases, sampler, "raw tables from Parquet", "fixture") as ph:
                ph.detail["rows"] = {ds: load_raw_from_parquet(con, data_dir, ds, landed_at) for ds in DATASETS}
            with timed(phases, sampler, f"staging (stage × {len(DATASETS)} datasets)", "staging") as ph:
                hold_back = policy.get("publication.hold_back", {})
                for ds in DATASETS:
                    t0 = time.perf_counter()
                    c = stage(con, ds, hold_back)
                    stage_counts[ds] = {k: c[k] for k in ("raw", "staged_versions", "current", "quarantined")}
                    stage_counts[ds]["held_back_batches"] = len(c["held_back"])
                    stage_counts[ds]["seconds"] = round(time.perf_counter() - t0, 2)
                    print(f"    stage {ds}: {stage_counts[ds]}", flush=True)
                ph.detail["datasets"] = stage_counts
            con.execute("CHECKPOINT")
        if args.stage_only:
            raise _StageOnly

        # ---- the rules engine: run_subjects + run_rules, statement by statement
        settings: dict[str, list] = {}
        for spec in args.statement_setting:
            lab, _, kv = spec.rpartition(":")
            name, _, value = kv.partition("=")
            settings.setdefault(lab.strip(), []).append((name.strip(), value.strip()))

        def run_timed_file(con, path: Path) -> None:
            """The engine's own loop calls this for each file: every statement is timed."""
            label = ("subjects/" if path.parent.name == "subjects" else "") + path.name
            n0, t0 = len(timings), time.perf_counter()
            try:
                per_file[label] = run_script(con, path, timings, sampler, settings)
            finally:
                per_file.setdefault(label, time.perf_counter() - t0)
                for t in timings[n0:]:
                    t["file"] = label

        with timed(phases, sampler, "rules engine (run_subjects + run_rules)", "engine") as ph_engine:
            try:
                for label, run_folder in (("subjects/", engine.run_subjects), ("", engine.run_rules)):
                    key, t0, files0 = f"{label}prepare_params", time.perf_counter(), sum(per_file.values())
                    per_file[key] = 0.0
                    run_folder(con, as_of, policy, PERSON_SALT, run_file=run_timed_file)
                    # what the call spent outside its files: prepare_params and the table upgrades
                    per_file[key] = time.perf_counter() - t0 - (sum(per_file.values()) - files0)
            except StatementFailed as exc:
                engine_failed = str(exc)
                print(f"  ENGINE FAILED: {exc}", flush=True)
        engine_seconds = ph_engine.seconds

        # ---- EXPLAIN ANALYZE of the slowest engine statements (after the timing: re-runs them)
        if args.explain and not engine_failed:
            slow = sorted(
                (t for t in timings if t["statement"].startswith(("TABLE", "#"))), key=lambda t: -t["seconds"]
            )[: args.explain]
            for i, t in enumerate(slow, 1):
                path = OUT / f"rules-{stamp}-explain-{i}.txt"
                t0 = time.perf_counter()
                try:
                    plan = json.loads(con.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + t["sql"]).fetchall()[0][1])
                    path.with_suffix(".json").write_text(
                        json.dumps(plan, ensure_ascii=False, indent=1), encoding="utf-8"
                    )
                    ops = operators(plan)
                    summary = "\n".join(
                        f"{o['seconds']:9.2f} s {o['rows']:>13,} rows  {'  ' * o['depth']}{o['type']}  {o['info']}"
                        for o in ops
                    )
                    top = sorted(ops, key=lambda o: -o["seconds"])[:8]
                except duckdb.Error as exc:
                    summary, top = f"EXPLAIN ANALYZE failed: {exc}", []
                path.write_text(
                    f"-- {t['file']}: {t['statement']} ({t['seconds']:.2f} s in the timed run)\n"
                    f"{t['sql']}\n\n-- operators (own time, rows out), as a tree:\n{summary}\n",
                    encoding="utf-8",
                )
                explains.append(
                    {
                        "file": t["file"],
                        "statement": t["statement"],
                        "seconds": t["seconds"],
                        "explain_seconds": time.perf_counter() - t0,
                        "path": str(path.relative_to(OUT.parent.parent)),
                        "top_operators": [{k: o[k] for k in ("type", "seconds", "rows", "info")} for o in top],
                    }
                )
                print(f"  EXPLAIN ANALYZE {t['file']} {t['statement']} → {path.name}", flush=True)

        # ---- the floor
        if not args.no_floor:
            # a fresh connection: the engine's temp tables (cs_*, pf_*, …) would hold the floor's memory
            con.close()
            con = open_warehouse(db, args.memory_limit)
            with timed(phases, sampler, "floor (bench/rules_floor.sql)", "floor") as ph_floor:
                t0, cpu0 = time.perf_counter(), time.process_time()
                engine.prepare_params(con, as_of, policy, PERSON_SALT)
                floor_timings.append(
                    {
                        "file": "prepare_params",
                        "statement": "rules.prepare_params",
                        "seconds": time.perf_counter() - t0,
                        "cpu_seconds": time.process_time() - cpu0,
                        "sql": "",
                        "peak_rss_mb_so_far": sampler.peak_kb / 1024,
                    }
                )
                run_script(con, FLOOR_SQL, floor_timings, sampler)
            floor_seconds = ph_floor.seconds
            with timed(phases, sampler, "agreement check", "check") as ph:
                agree = agreement(con) if not engine_failed else {}
            for name, a in agree.items():
                print(
                    f"  agreement {name}: {a['agreement']:.4%} — "
                    + ", ".join(f"{k} {v:,}" for k, v in a.items() if isinstance(v, int)),
                    flush=True,
                )
                for d in a["differences_sample"][:5]:
                    print(f"    {d}")

        tables = {
            t: _count(con, t)
            for t in (
                "subjects.registry",
                "subjects.penalty_versions",
                "subjects.penalties",
                "rules.accidents",
                "rules.trigger_versions",
                "rules.entries",
                "rules.entry_history",
                "rules.blacklist",
                "rules.restrictions",
                "rules.penalties_public",
                "rules.credit_score_components",
                "rules.credit_scores",
                "rules.premium_factors",
                "rules.intermediary_ratings",
                "floor.blacklist",
                "floor.credit_scores",
            )
        }
        if not engine_failed:
            status = dict(con.execute("SELECT status, count(*) FROM rules.blacklist GROUP BY 1 ORDER BY 1").fetchall())
            grades = dict(
                con.execute("SELECT grade, count(*) FROM rules.credit_scores GROUP BY 1 ORDER BY 1").fetchall()
            )

    except _StageOnly:
        pass
    finally:
        con.close()
        sampler.stop()
    kept = None
    if args.keep or args.warehouse:
        kept = str(db.relative_to(OUT.parent.parent)) if db.is_relative_to(OUT.parent.parent) else str(db)
    else:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "rules",
        "timestamp": stamp,
        "command": "python -m bench.rules " + " ".join(sys.argv[1:]),
        "parameters": {
            "seed": args.seed,
            "scale": args.scale,
            "penalties_per_subject": args.penalties_per_subject,
            "start": meta["start"],
            "end": meta["end"],
            "as_of": as_of.isoformat(),
            "policy_version": policy.version,
            "memory_limit": args.memory_limit,
            "threads": threads,
        },
        "data": {
            "dir": str(data_dir.relative_to(OUT.parent.parent)),
            "generated_rows": counts,
            "generation_seconds": gen_seconds,
        },
        "staged": stage_counts,
        "phases": [vars(p) for p in phases],
        "engine": {
            "seconds": engine_seconds,
            "failed": engine_failed,
            "statement_settings": args.statement_setting,
            "per_file": per_file,
            "statements": [{k: v for k, v in t.items() if k != "sql"} for t in timings],
        },
        "floor": {
            "seconds": floor_seconds,
            "statements": [{k: v for k, v in t.items() if k != "sql"} for t in floor_timings],
        },
        "ratio_engine_over_floor": (engine_seconds / floor_seconds) if floor_seconds and not engine_failed else None,
        # the part of the engine that answers what the floor answers: subject resolution, accidents,
        # triggers, the list and the credit scores (35/40/60/70 make other products)
        "engine_same_scope_seconds": sum(v for k, v in per_file.items() if _same_scope(k)),
        "ratio_same_scope_over_floor": (sum(v for k, v in per_file.items() if _same_scope(k)) / floor_seconds)
        if floor_seconds and not engine_failed
        else None,
        # CPU seconds (all threads of this process): steadier than wall time on a shared machine. The
        # engine's are its same-scope statements' (prepare_params left out, < 0.5 s); the floor's its
        # phase's (with its prepare_params)
        "engine_same_scope_cpu_seconds": sum(t.get("cpu_seconds", 0.0) for t in timings if _same_scope(t["file"])),
        "floor_cpu_seconds": next((p.cpu_seconds for p in phases if p.group == "floor"), None),
        "agreement": agree,
        "tables": tables,
        "blacklist_status": status,
        "credit_grades": grades,
        "explain": explains,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "environment": {
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            **_git_state(),
            "loadavg_at_start": load_start,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "kept": kept,
    }
    path = OUT / f"rules-{stamp}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    _print(result, path)
    return result


def _print(r: dict, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, 140))
    p = r["parameters"]
    t = Table(
        title=f"rules engine vs floor — {p['scale']:,} subjects, "
        f"{r['data']['generated_rows']['penalties']:,} penalties, "
        f"{r['data']['generated_rows']['accidents']:,} accidents, as_of {p['as_of']}, "
        f"DuckDB threads {p['threads']}"
    )
    for col in ("phase", "seconds", "CPU s", "peak RSS MiB", "load avg (mean / max)"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for ph in r["phases"]:
        t.add_row(
            ph["name"],
            f"{ph['seconds']:.2f}",
            f"{ph['cpu_seconds']:.1f}",
            f"{ph['peak_rss_mb']:,.0f}",
            f"{ph['load_mean']:.1f} / {ph['load_max']:.1f}",
        )
    con.print(t)

    f = Table(title="rules engine: seconds per file")
    for col in ("file", "seconds", "share"):
        f.add_column(col, justify="left" if col == "file" else "right")
    tot = r["engine"]["seconds"] or 1
    if not r["engine"]["per_file"]:
        con.print(f"written {path}")
        return
    for name, s in r["engine"]["per_file"].items():
        f.add_row(name, f"{s:.2f}", f"{s / tot:.1%}")
    con.print(f)

    s = Table(title="slowest statements (engine and floor)")
    for col in ("", "file", "statement", "seconds", "CPU s"):
        s.add_column(col, justify="right" if col in ("seconds", "CPU s") else "left")
    for who, rows in (("engine", r["engine"]["statements"]), ("floor", r["floor"]["statements"])):
        for x in sorted(rows, key=lambda x: -x["seconds"])[: 12 if who == "engine" else 6]:
            s.add_row(who, x["file"], x["statement"], f"{x['seconds']:.2f}", f"{x['cpu_seconds']:.1f}")
    con.print(s)

    rows = Table(title="rows")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for name, n in r["tables"].items():
        rows.add_row(name, "—" if n is None else f"{n:,}")
    con.print(rows)
    if r["engine"]["failed"]:
        con.print(
            f"[bold red]rules engine FAILED after {r['engine']['seconds']:.1f} s: {r['engine']['failed']}[/bold red]"
        )
    if r["engine"]["statement_settings"]:
        con.print(f"per-statement settings: {r['engine']['statement_settings']}")
    con.print(f"blacklist by status: {r['blacklist_status']}; credit grades: {r['credit_grades']}")
    for name, a in r["agreement"].items():
        con.print(
            f"agreement {name}: [bold]{a['agreement']:.4%}[/bold] (engine {a['engine']:,}, floor {a['floor']:,}, "
            f"engine only {a['engine_only']:,}, floor only {a['floor_only']:,})"
        )
    if r["ratio_engine_over_floor"]:
        con.print(
            f"[bold]rules engine {r['engine']['seconds']:.1f} s / floor {r['floor']['seconds']:.1f} s = "
            f"{r['ratio_engine_over_floor']:.2f}×[/bold] (all rule files); the same scope as the floor "
            f"(subjects, 10, 20, 30, 50): {r['engine_same_scope_seconds']:.1f} s / {r['floor']['seconds']:.1f} s = "
            f"{r['ratio_same_scope_over_floor']:.2f}×"
        )
    if r.get("floor_cpu_seconds"):
        same, floor = r["engine_same_scope_cpu_seconds"], r["floor_cpu_seconds"]
        con.print(f"[bold]CPU: same scope {same:.1f} s / floor {floor:.1f} s = {same / floor:.2f}×[/bold]")
    env = r["environment"]
    con.print(
        f"peak RSS (this process): {r['peak_rss_mb']:,.0f} MiB; load average at start {env['loadavg_at_start']}, "
        f"at end {env['loadavg_at_end']} on {env['cpus']} CPUs; code git {env.get('git')}"
        + (f" + uncommitted {', '.join(env['git_dirty'])}" if env.get("git_dirty") else "")
    )
    if r["kept"]:
        con.print(f"warehouse kept: {r['kept']}")
    con.print(f"written {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rules", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
