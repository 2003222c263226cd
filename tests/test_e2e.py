"""The thin end-to-end path: simulator → HTTP → landing → DuckDB → rules → blacklist feed."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq


def test_run_publishes(pipeline_run):
    s = pipeline_run["summary"]
    assert s.ok, s.log
    assert s.published, s.reasons
    landed = {(r["department"], r["dataset"]) for r in s.sources if r["status"] == "landed"}
    assert ("yjj", "penalties") in landed and ("zjj", "penalties") in landed  # json and csv transports
    assert all(r["status"] == "landed" for r in s.sources), s.sources


def test_every_generated_record_is_staged_or_quarantined(pipeline_run, sim_meta):
    home = pipeline_run["home"]
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    for dept, per_ds in sim_meta["counts"].items():
        for ds, n in per_ds.items():
            staged = con.execute(f"SELECT count(*) FROM staged.{ds} WHERE department = ?", [dept]).fetchone()[0]
            held = con.execute(
                "SELECT count(DISTINCT (fetch_id, seq)) FROM quality.violations "
                "WHERE dataset = ? AND department = ? AND severity = 'quarantine'",
                [ds, dept],
            ).fetchone()[0]
            assert staged + held == n, (dept, ds, staged, held, n)


def test_blacklist_feed_in_exports_layout(pipeline_run):
    exports = pipeline_run["home"] / "exports"
    index = json.loads((exports / "index.json").read_text(encoding="utf-8"))
    versions = json.loads((exports / "blacklist" / "versions.json").read_text(encoding="utf-8"))
    version = versions["last_successful"]
    assert version == pipeline_run["summary"].version
    assert json.dumps(index, ensure_ascii=False).count(version) >= 1
    vdir = exports / "blacklist" / version
    for name in ("manifest.json", "full.parquet", "full.csv", "full.jsonl", "delta.jsonl"):
        assert (vdir / name).exists(), name
    manifest = json.loads((vdir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == pipeline_run["as_of"].isoformat()
    assert manifest["signature"]
    assert (vdir / "full.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_golden_a1_and_b1_subjects_are_listed(pipeline_run, sim_meta):
    exports = pipeline_run["home"] / "exports"
    version = json.loads((exports / "blacklist" / "versions.json").read_text(encoding="utf-8"))["last_successful"]
    rows = pq.read_table(exports / "blacklist" / version / "full.parquet").to_pylist()
    for ground in ("A1", "B1"):
        golden = [s for s in sim_meta["scenarios"] if s["ground"] == ground]
        assert golden, f"generator has no {ground} scenario"
        for sc in golden:
            units = [
                r
                for r in rows
                if r["ground"] == ground and r["subject_type"] == "unit" and r["subject_id"] == sc["uscc"]
            ]
            assert units, (ground, sc)
            assert units[0]["status"] in {"listed", "pending"}
            persons = [
                r
                for r in rows
                if r["ground"] == ground
                and r["subject_type"] == "person"
                and r["decision_no"] == units[0]["decision_no"]
            ]
            assert persons, f"{ground}: the principal is listed with the unit"
            assert persons[0]["subject_code"].startswith("*") and len(persons[0]["subject_code"]) == 18


def test_no_full_id_numbers_in_published_files(pipeline_run):
    import re

    exports = pipeline_run["home"] / "exports"
    version = json.loads((exports / "blacklist" / "versions.json").read_text(encoding="utf-8"))["last_successful"]
    text = (exports / "blacklist" / version / "full.jsonl").read_text(encoding="utf-8")
    assert not re.search(r"(?<![0-9*])[1-9][0-9]{5}(19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3}[0-9X](?![0-9])", text)


def test_explain_names_the_department_records_behind_an_entry(pipeline_run, sim_meta):
    import subprocess
    import sys
    from pathlib import Path

    exports = pipeline_run["home"] / "exports"
    version = json.loads((exports / "blacklist" / "versions.json").read_text(encoding="utf-8"))["last_successful"]
    rows = pq.read_table(exports / "blacklist" / version / "full.parquet").to_pylist()
    golden = next(s for s in sim_meta["scenarios"] if s["ground"] == "A1")
    entry = next(r for r in rows if r["ground"] == "A1" and r["subject_id"] == golden["uscc"])
    bin_ = Path(sys.executable).parent / "safecredit"
    r = subprocess.run(
        [str(bin_), "explain", entry["entry_id"], "--home", str(pipeline_run["home"]), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["entry"]["entry_id"] == entry["entry_id"]
    assert {(v["department"], v["dataset"]) for v in doc["penalty_versions"]} == {(golden["dept"], "penalties")}
    assert {v["record_id"] for v in doc["penalty_versions"]} <= set(golden["record_ids"]["penalties"])
    assert doc["accident"] and doc["accident"][0]["grade"] in {"重大", "特别重大"}
    assert not __import__("re").search(r"\d{17}[\dX]", r.stdout)  # no full ID numbers
    readable = subprocess.run(
        [str(bin_), "explain", entry["entry_id"], "--home", str(pipeline_run["home"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert readable.returncode == 0 and entry["entry_id"] in readable.stdout
    missing = subprocess.run(
        [str(bin_), "explain", "E0000000000000000", "--home", str(pipeline_run["home"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "Nothing known" in missing.stderr


def test_publish_restore_serves_an_earlier_version_as_a_new_one(pipeline_run, tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from safecredit.publish import SigningKey, verify_version

    for d in ("exports", "keys"):
        shutil.copytree(pipeline_run["home"] / d, tmp_path / d)
    old = json.loads((tmp_path / "exports" / "blacklist" / "versions.json").read_text(encoding="utf-8"))
    bin_ = Path(sys.executable).parent / "safecredit"
    r = subprocess.run(
        [str(bin_), "publish", "--restore", old["last_successful"], "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    new = json.loads((tmp_path / "exports" / "blacklist" / "versions.json").read_text(encoding="utf-8"))
    assert new["last_successful"] != old["last_successful"]
    assert new["items"][0]["restored_from"] == old["last_successful"]
    pem = SigningKey.load_or_create(tmp_path / "keys").public_pem()
    verify_version(tmp_path / "exports", "blacklist", new["last_successful"], pem)
    bad = subprocess.run(
        [str(bin_), "publish", "--restore", "20000101T000000Z-000000", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_the_emergency_departments_listing_decisions_reach_the_list_the_queue_and_the_report(pipeline_run, sim_data):
    """department-feeds.md §3.6 end to end: the simulated 应急 department's decisions are pulled,
    staged and matched (rules.md §3); its one disagreeing decision and the overdue entries are in
    the run summary and the report; the authorities' queue is published as listing_candidates."""
    sent = pq.read_table(sim_data / "yjj" / "listing_decisions").to_pylist()
    listings = [r for r in sent if r["MD_LX"] == "列入"]
    annulments = [r for r in sent if r["MD_LX"] == "撤销列入"]
    assert listings and len(annulments) <= 1
    home = pipeline_run["home"]
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    decided = dict(con.execute("SELECT listing_decision_no, status FROM rules.blacklist WHERE decided").fetchall())
    assert decided.keys() == {r["MD_WSH"] for r in listings}  # every decision sent is on the list
    for r in annulments:
        assert decided[r["MD_YWSH"]] == "revoked"
    issues = con.execute("SELECT issue, ground FROM rules.listing_decision_issues").fetchall()
    assert issues == [("disagreement", "B4")]  # the one decision that disagrees with its penalty
    assert con.execute("SELECT count(*) FROM rules.blacklist WHERE regime = 'aq11'").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM rules.blacklist WHERE regime = 'industry'").fetchone()[0] > 0
    # the other departments send no decisions: their entries are all inferred
    assert not con.execute(
        "SELECT count(*) FROM rules.blacklist WHERE decided AND source_department <> 'yjj'"
    ).fetchone()[0]
    d = pipeline_run["summary"].listing_decisions
    assert d["disagreements_count"] == 1 and d["disagreements"][0]["issue"] == "disagreement"
    assert d["overdue_count"] == len(d["overdue"]) or d["overdue_count"] > len(d["overdue"]) == 50
    exports = home / "exports"
    version = pipeline_run["summary"].version
    cand = pq.read_table(exports / "listing_candidates" / version / "full.parquet")
    assert cand.num_rows == d["candidates"] and not any(cand.column("decided").to_pylist())
    page = (exports / "reports" / f"{version}.html").read_text(encoding="utf-8")
    assert 'id="decisions"' in page and "LISTING-DECISION-DISAGREES" not in page
    assert d["disagreements"][0]["decision_no"] in page
