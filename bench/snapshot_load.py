"""Benchmark (not a test): loading a publication snapshot the way `safecredit serve` does.

    python -m bench.api --snapshot-rows 1000000          # or: python -m bench.snapshot_load --rows 1000000

Synthesises with DuckDB a publication of N subjects (N units in `credit_scores`, 7% of N list
entries — a third of them persons —, their restrictions, listing and restriction timelines, the
city's proportions of `bench/README.md`) as the feed files the service reads (`full.parquet`,
manifests, `versions.json`, `index.json`; nothing signed, no CSV or JSONL), then, in a fresh
process, times `build_snapshot` (the feeds DuckDB holds copied into it, the others views over
their files) and `warm` (the answer index, built from the files a column at a time: fixed-width id
arrays, columns in id order) and reports the peak resident set and the CPU seconds of that
process, the load average, and the time of 100,000 lookups from the index (70% clean codes, as
bench.api asks). `--keep DIR` synthesises into DIR once and reuses it.
Target (issue 11): at 10 M subjects ≤ 60 s and ≤ 4 GiB. Other feeds (premium factors, incentives,
penalties) are not synthesised: their load is DuckDB's, not the answer index's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERSION = "20261123T020000Z-b0b0b0"
AS_OF = "2026-11-22"
MATTERS = 18  # the measures a listed unit gets (contracts/policy/default/measures.yaml)
FEEDS = ("credit_scores", "blacklist", "restrictions", "listing_timeline", "restriction_timeline")

# one statement per feed over `subjects` and `entries` (temp tables), rows in id order
SYNTH = {
    "credit_scores": "SELECT uscc, name, 60 + i % 40 AS score, 'B' AS grade FROM subjects ORDER BY uscc",
    "blacklist": "SELECT * EXCLUDE (j) FROM entries ORDER BY entry_id",
    "restrictions": """SELECT 'R' || left(md5(entry_id || m), 16) AS restriction_id, 'listing' AS source, entry_id,
            regime, basis AS listing_basis, decided, 'D' || left(md5(decision_no), 16) AS penalty_id, NULL AS ban,
            subject_type, subject_id, subject_code, name, ground, 'matter_' || m AS matter, '事项' || m AS measure_name,
            '依法限制' || m AS measure, '有关部门' AS implementing_department, '国发〔2016〕33号' AS basis,
            false AS basis_unconfirmed, NULL AS scope_industry, start_date AS restricted_from,
            end_date AS restricted_until, false AS for_life, status, decision_no, authority, authority_code,
            'default@1' AS policy_version, DATE '{as_of}' AS as_of
        FROM entries, range({matters}) r(m) WHERE status = 'listed' ORDER BY entry_id, matter""",
    "listing_timeline": """SELECT entry_id, valid_from, valid_until, subject_type, subject_id, subject_code, name, role,
            ground, ground_name, regime, basis, decided, decision_no, authority, authority_code, decision_date,
            start_date, end_date, s AS status, policy_version
        FROM (SELECT *, unnest([decision_date, start_date, end_date]) AS valid_from,
                     unnest([start_date, end_date, NULL]) AS valid_until,
                     unnest(['pending', 'listed', 'expired']) AS s FROM entries)
        ORDER BY entry_id, valid_from""",
    "restriction_timeline": """SELECT 'R' || left(md5(entry_id || m), 16) AS restriction_id, 'listing' AS source,
            entry_id, regime, basis AS listing_basis, decided, subject_type, subject_id, subject_code, name, ground,
            'matter_' || m AS matter, '事项' || m AS measure_name, start_date AS restricted_from,
            end_date AS restricted_until, false AS for_life, 'listed' AS status, 'default@1' AS policy_version,
            start_date AS valid_from, end_date AS valid_until
        FROM entries, range({matters}) r(m) ORDER BY entry_id, matter, valid_from""",
}


def synthesise(exports: Path, n: int) -> dict[str, int]:
    """The feed files of a publication of `n` subjects under `exports`; rows per feed."""
    import duckdb

    con = duckdb.connect(config={"threads": 2})
    con.execute(f"""CREATE TEMP TABLE subjects AS
        SELECT i, '91331202' || lpad(CAST(i AS VARCHAR), 10, '0') AS uscc, '江城市测试' || i || '号有限公司' AS name
        FROM range({n}) t(i)""")
    con.execute(f"""CREATE TEMP TABLE entries AS
        SELECT j, 'E' || left(md5(CAST(j AS VARCHAR)), 16) AS entry_id,
               CASE WHEN j % 3 = 2 THEN 'person' ELSE 'unit' END AS subject_type,
               CASE WHEN j % 3 = 2 THEN 'P' || left(md5('p' || j), 16)
                    ELSE '91331202' || lpad(CAST((j * 13) % {n} AS VARCHAR), 10, '0') END AS subject_id,
               CASE WHEN j % 3 = 2 THEN '**************' || lpad(CAST(j % 10000 AS VARCHAR), 4, '0')
                    ELSE '91331202' || lpad(CAST((j * 13) % {n} AS VARCHAR), 10, '0') END AS subject_code,
               '江城市测试' || j || '号有限公司' AS name, 'penalised unit' AS role, 'B1' AS ground,
               '无证经营' AS ground_name, 'aq11' AS regime, '应急管理部令第11号' AS basis, j % 5 = 0 AS decided,
               '江应急罚〔2025〕' || j || '号' AS decision_no, '江城市应急管理局' AS authority,
               '11331200000000001X' AS authority_code,
               CAST(DATE '2023-01-02' + INTERVAL (j % 1400) DAY AS DATE) AS decision_date,
               CAST(DATE '2023-01-09' + INTERVAL (j % 1400) DAY AS DATE) AS start_date,
               CAST(DATE '2026-01-09' + INTERVAL (j % 1400) DAY AS DATE) AS end_date,
               CASE WHEN j % 10 < 3 THEN 'listed' WHEN j % 10 < 8 THEN 'expired' ELSE 'repaired' END AS status,
               'default@1' AS policy_version
        FROM range({int(n * 0.07)}) t(j)""")
    counts = {}
    index = {"version": VERSION, "generated_at": "2026-11-22T18:00:00Z", "feeds": {}}
    for feed in FEEDS:
        d = exports / feed / VERSION
        d.mkdir(parents=True)
        sql = SYNTH[feed].format(as_of=AS_OF, matters=MATTERS)
        con.execute(f"COPY ({sql}) TO '{d / 'full.parquet'}' (FORMAT PARQUET)")
        columns = [r[0] for r in con.execute(f"DESCRIBE {sql}").fetchall()]
        counts[feed] = con.execute(f"SELECT count(*) FROM read_parquet('{d / 'full.parquet'}')").fetchall()[0][0]
        manifest = {
            "version": VERSION,
            "generated_at": index["generated_at"],
            "as_of": AS_OF,
            "row_count": counts[feed],
        }
        manifest["columns"] = [{"name": c} for c in columns]
        (d / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        item = {"version": VERSION, "result": "success", "generated_at": index["generated_at"]}
        (exports / feed / "versions.json").write_text(json.dumps({"items": [item], "last_successful": VERSION}))
        index["feeds"][feed] = {"latest": VERSION, "as_of": AS_OF, "row_count": counts[feed]}
    (exports / "index.json").write_text(json.dumps(index), encoding="utf-8")
    con.close()
    return counts


def time_load(exports: Path, reload: bool = False) -> dict:
    """Load the snapshot of `exports` as the server does (in this process) and measure it;
    `reload`: then load it again while the first is held, as a server builds the next publication's
    snapshot beside the one it serves (the peak of both)."""
    import random

    from safecredit.api.answer_index import PUBLISHED, TIMELINES
    from safecredit.api.restrictions import answer_index, warm
    from safecredit.api.snapshot import build_snapshot

    load_start = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: say how busy
    t0 = time.perf_counter()
    snap = build_snapshot(exports, views=TIMELINES, compressed=PUBLISHED)  # as `safecredit serve` loads it
    t1 = time.perf_counter()
    rss_built, peak_built, cpu_built = _rss_mib(), _peak_mib(), _cpu_s()
    warm(snap)
    t2 = time.perf_counter()
    cpu_loaded, rss_loaded, peak_loaded = _cpu_s(), _rss_mib(), _peak_mib()
    index = answer_index(snap)
    assert index is not None
    cur = snap.cursor()
    units = [u for (u,) in cur.execute('SELECT uscc FROM "credit_scores" USING SAMPLE 70000 ROWS').fetchall()]
    listed = [
        s
        for (s,) in cur.execute(
            "SELECT subject_id FROM blacklist WHERE subject_type = 'unit' USING SAMPLE 30000 ROWS"
        ).fetchall()
    ]
    codes = units + listed
    random.Random(1).shuffle(codes)
    t3 = time.perf_counter()
    found = sum(bool(index.prepared("unit", c, c).listings) for c in codes)
    t4 = time.perf_counter()
    cur.close()
    reloaded = {"rss_after_lookups_mib": _rss_mib()}
    if reload:
        t5 = time.perf_counter()
        second = build_snapshot(exports, views=TIMELINES, compressed=PUBLISHED)
        warm(second)
        reloaded |= {"reload_s": round(time.perf_counter() - t5, 2), "rss_after_reload_mib": _rss_mib()}
        reloaded["peak_rss_with_reload_mib"] = _peak_mib()
        second.close()
    snap.close()
    return reloaded | {
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "build_snapshot_s": round(t1 - t0, 2),
        "answer_index_s": round(t2 - t1, 2),
        "load_s": round(t2 - t0, 2),
        "cpu_build_snapshot_s": cpu_built,
        "cpu_load_s": cpu_loaded,
        "rss_after_build_snapshot_mib": rss_built,
        "peak_rss_build_snapshot_mib": peak_built,
        "rss_after_warm_mib": rss_loaded,
        "peak_rss_mib": peak_loaded,
        "answer_index_mib": round(index.nbytes / 2**20),
        "lookups": len(codes),
        "lookups_with_listings": found,
        "lookup_us": round((t4 - t3) / max(len(codes), 1) * 1e6, 1),
    }


def _peak_mib() -> int:
    """The peak resident set of this process (Linux `VmHWM`), MiB. Not `ru_maxrss`: Linux carries
    it over from the parent through fork and exec, so a child started by a parent that had just
    synthesised the publication reported the parent's 7 GiB as its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process so far: on a shared machine the wall time
    depends on the load, the CPU time much less."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 1)


def _rss_mib() -> int:
    """The resident set of this process now (Linux), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024)
    return 0


def run(rows: int, keep: Path | None = None, reload: bool = False) -> dict:
    """Synthesise (or, with `keep` holding a publication already, reuse) and time the load."""
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        exports = (keep or Path(tmp)) / "exports"
        t0 = time.perf_counter()
        if (exports / "index.json").is_file():
            counts = json.loads((exports / "index.json").read_text())["feeds"]
            counts = {feed: entry["row_count"] for feed, entry in counts.items()}
        else:
            counts = synthesise(exports, rows)
        synth_s = time.perf_counter() - t0
        out = subprocess.run(
            [sys.executable, "-m", "bench.snapshot_load", "--time-load", str(exports), *(["--reload"] * reload)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = {"subjects": rows, "rows": counts, "synthesis_s": round(synth_s, 1), **json.loads(out.stdout)}
    return result


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--rows", type=int, default=1_000_000, help="subjects of the synthetic publication")
    ap.add_argument(
        "--keep", type=Path, metavar="DIR", help="synthesise into DIR/exports and keep it (reused when there)"
    )
    ap.add_argument(
        "--reload", action="store_true", help="then load it again beside the first (a server's next publication)"
    )
    ap.add_argument("--time-load", metavar="EXPORTS", help=argparse.SUPPRESS)  # the measured child process


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.snapshot_load", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    if args.time_load:
        print(json.dumps(time_load(Path(args.time_load), args.reload)))
        return 0
    print(json.dumps(run(args.rows, args.keep, args.reload), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
