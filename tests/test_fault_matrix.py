"""Fault matrix: one test per item of department-feeds.md §5, over real HTTP against the simulator.

Each test serves the shared generated data with one named fault switched on, ingests every source
through the real connectors (fast retry timings), stages it against the contracts and checks the
outcome against the simulator's ground truth: no valid record lost, every bad record quarantined
with the rule for its field, held-back batches named.
"""

from __future__ import annotations

from datetime import date

import pytest

from safecredit import config
from safecredit.connectors.client import DepartmentClient, RetryPolicy
from safecredit.landing import landed_departments, pull
from safecredit.policy import policy_for
from safecredit.rules import run_subjects
from safecredit.simulator import start_simulator
from safecredit.staging import load_raw, stage
from safecredit.warehouse import connect

FAST = RetryPolicy(
    max_attempts=6, backoff_base=0.01, backoff_max=0.05, max_retry_after=0.05, connect_timeout=2.0, read_timeout=1.0
)
DATASETS = config.DATASETS


class Outcome:
    def __init__(self, truth, results, con):
        self._truth, self.results, self.con = truth, results, con

    def truth(self, fault: str) -> list[dict]:
        return [t for t in self._truth if t["fault"] == fault]

    def quarantined(self) -> dict[tuple, set[tuple]]:
        """(department, dataset, record_id) → {(rule_id, field)}"""
        out: dict[tuple, set] = {}
        for dept, ds, rid, rule, field in self.con.execute(
            "SELECT department, dataset, record_id, rule_id, field FROM quality.violations "
            "WHERE severity = 'quarantine'"
        ).fetchall():
            out.setdefault((dept, ds, rid), set()).add((rule, field))
        return out

    def flagged(self) -> dict[tuple, set[str]]:
        out: dict[tuple, set] = {}
        for dept, ds, rid, rule in self.con.execute(
            "SELECT department, dataset, record_id, rule_id FROM quality.violations WHERE severity = 'flag'"
        ).fetchall():
            out.setdefault((dept, ds, rid), set()).add(rule)
        return out

    def staged_ids(self, ds: str) -> set[tuple]:
        return set(self.con.execute(f"SELECT department, record_id FROM staged.{ds}").fetchall())

    def current(self, ds: str, cols: str = "*"):
        return self.con.execute(f"SELECT {cols} FROM staged.{ds}_current").fetchall()


def pull_all(sim, tmp_path, page_limit: int = 100) -> list:
    """Every configured source through the real connectors, with fast retry timings."""
    sim.write_sources(tmp_path / "sources.yaml")
    results = []
    for dept in config.load_sources(tmp_path / "sources.yaml"):
        for ds in dept.datasets:
            with DepartmentClient(dept, FAST) as client:
                results.append(pull(dept, ds, tmp_path / "raw", client=client, page_limit=page_limit))
    return results


def ingest(data_dir, tmp_path, faults, seed=11, page_limit=100, **sim_kw) -> Outcome:
    sim_kw.setdefault("stall_seconds", 2.0)
    sim = start_simulator(data_dir, port=0, seed=seed, faults=faults, **sim_kw)
    raw = tmp_path / "raw"
    try:
        results = pull_all(sim, tmp_path, page_limit)
        truth = [
            {**t, "department": d["id"], "dataset": ds}
            for d in sim.departments
            for ds in d["datasets"]
            for t in sim.truth(d["id"], ds)
        ]
    finally:
        sim.stop()
    con = connect(tmp_path / "warehouse.duckdb")
    pol = policy_for(None)
    for ds in DATASETS:
        load_raw(con, raw, landed_departments(raw, ds), ds)
        stage(con, ds, pol.get("publication.hold_back", {}))
    run_subjects(con, date(2026, 11, 22), pol, "test-salt")
    return Outcome(truth, results, con)


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    """Smaller than the session data set: each test here serves and ingests it afresh."""
    from safecredit.generator import generate

    out = tmp_path_factory.mktemp("matrix") / "data"
    generate(out, seed=5, scale=600, start=date(2025, 9, 1))
    return out


@pytest.fixture(scope="module")
def sim_meta(sim_data) -> dict:
    import json

    return json.loads((sim_data / "meta.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def baseline(sim_data, tmp_path_factory) -> Outcome:
    return ingest(sim_data, tmp_path_factory.mktemp("baseline"), faults=())


def _all_landed(o: Outcome):
    assert all(r.status == "landed" for r in o.results), [r.as_dict() for r in o.results if r.status != "landed"]


def test_clean_baseline_stages_everything(baseline, sim_meta):
    _all_landed(baseline)
    assert baseline.quarantined() == {}
    for dept, per_ds in sim_meta["counts"].items():
        for ds, n in per_ds.items():
            got = {r for r in baseline.staged_ids(ds) if r[0] == dept}
            assert len(got) == n, (dept, ds)


# -- data faults that must be quarantined with the rule for their field ------------------------------

QUARANTINE_FAULTS = ["bad_uscc", "impossible_dates", "future_dates", "bad_amounts"]


@pytest.mark.parametrize("fault", QUARANTINE_FAULTS)
def test_bad_records_are_quarantined_with_the_rule_for_their_field(fault, sim_data, tmp_path, baseline):
    # below the hold-back threshold (10%): each bad record alone is quarantined, its batch publishes
    o = ingest(sim_data, tmp_path, faults={fault: 0.04})
    _all_landed(o)
    assert o.con.execute("SELECT count(*) FROM quality.batches WHERE held").fetchone()[0] == 0
    truth = o.truth(fault)
    assert truth, f"simulator applied no {fault}"
    q = o.quarantined()
    for t in truth:
        key = (t["department"], t["dataset"], t["record_id"])
        assert key in q, (fault, t)
        assert t["field"] in {f for _, f in q[key]}, (fault, t, q[key])
    # and nothing valid is lost: every record untouched by the fault is staged
    bad = {(t["department"], t["dataset"], t["record_id"]) for t in truth}
    for ds in DATASETS:
        want = {(d, r) for d, r in baseline.staged_ids(ds) if (d, ds, r) not in bad}
        assert want <= o.staged_ids(ds), (fault, ds)


def test_many_bad_records_hold_back_their_batch_only(sim_data, tmp_path, baseline):
    o = ingest(sim_data, tmp_path, faults={"bad_uscc": 0.5})
    held = o.con.execute("SELECT department, dataset, reason_en FROM quality.batches WHERE held").fetchall()
    assert held and all("quarantined" in r and "threshold" in r for _, _, r in held)
    held_sources = {(d, ds) for d, ds, _ in held}
    quarantined = o.quarantined()
    for ds in DATASETS:
        base = {
            x
            for x in baseline.current(ds, "department, record_id")
            if (x[0], ds) not in held_sources and (x[0], ds, x[1]) not in quarantined
        }
        assert base <= set(o.current(ds, "department, record_id")), ds  # the other sources are staged


def test_fines_in_yuan_are_quarantined_never_rescaled(sim_data, tmp_path):
    o = ingest(sim_data, tmp_path, faults={"fine_in_yuan": 0.05})
    q = o.quarantined()
    truth = o.truth("fine_in_yuan")
    assert truth
    caught = [t for t in truth if (t["department"], "penalties", t["record_id"]) in q]
    # a fine that is implausible in 万元 is caught; a tiny one in 元 (e.g. 0.02万 → 200) cannot be told apart
    for t in truth:
        if float(t["served"]) > 500:
            assert t in caught, t
    assert len(caught) >= 0.8 * len(truth)
    staged = {r for (r,) in o.con.execute("SELECT fine_wan FROM staged.penalties").fetchall()}
    assert not any(float(t["served"]) in staged for t in caught)


# -- data faults that are normalised and staged ---------------------------------------------------------


@pytest.mark.parametrize("fault", ["fullwidth", "date_formats", "embedded_newlines", "name_variants"])
def test_normalisable_faults_are_staged_with_canonical_values(fault, sim_data, tmp_path, baseline):
    o = ingest(sim_data, tmp_path, faults={fault: 0.2})
    _all_landed(o)
    assert o.truth(fault)
    assert o.quarantined() == {}, (fault, list(o.quarantined().items())[:3])
    for ds in DATASETS:
        cols = "department, record_id"
        assert set(o.current(ds, cols)) == set(baseline.current(ds, cols)), (fault, ds)
    if fault in ("fullwidth", "date_formats"):
        # the values after normalisation equal the clean run's, column for column
        for ds in ("penalties", "enterprises"):
            order = "ORDER BY department, record_id"
            a = o.con.execute(
                f"SELECT * EXCLUDE (fetch_id, seq, landed_at, flags, extra_fields, updated_at) "
                f"FROM staged.{ds}_current {order}"
            ).fetchall()
            b = baseline.con.execute(
                f"SELECT * EXCLUDE (fetch_id, seq, landed_at, flags, extra_fields, updated_at) "
                f"FROM staged.{ds}_current {order}"
            ).fetchall()
            if fault == "fullwidth":  # names keep full-width brackets as sent (Chinese text); codes and numbers match
                a = [tuple(x for x in r if not isinstance(x, str) or x.isascii()) for r in a]
                b = [tuple(x for x in r if not isinstance(x, str) or x.isascii()) for r in b]
            assert a == b, (fault, ds)


def test_old_codes_resolve_through_the_registry(sim_data, tmp_path):
    o = ingest(sim_data, tmp_path, faults={"old_codes": 0.2})
    truth = o.truth("old_codes")
    assert truth
    ids = {t["record_id"] for t in truth}
    rows = o.con.execute("SELECT record_id, resolved_by, subject_id FROM subjects.penalties").fetchall()
    by_id = {r: (how, sid) for r, how, sid in rows}
    hit = [by_id[i] for i in ids if i in by_id]
    assert hit and all(how in {"reg_no", "org_code", "name", "id_number"} for how, _ in hit), hit[:5]
    assert all(sid for _, sid in hit)


def test_grade_below_casualties_is_flagged_and_kept(sim_data, tmp_path):
    o = ingest(sim_data, tmp_path, faults={"grade_mismatch": 0.5})
    truth = o.truth("grade_mismatch")
    assert truth
    flagged = o.flagged()
    for t in truth:
        assert "ACCIDENTS-GRADE-BELOW-CASUALTIES" in flagged.get(
            (t["department"], "accidents", t["record_id"]), set()
        ), t
        assert (t["department"], t["record_id"]) in o.staged_ids("accidents")


# -- schema drift --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["renamed_field", "missing_field"])
def test_schema_drift_holds_back_the_batch_naming_department_dataset_field(fault, sim_data, tmp_path):
    o = ingest(sim_data, tmp_path, faults={f"{fault}": 1.0})
    truth = [t for t in o.truth(fault) if t["record_id"] == "*"]
    assert truth
    held = o.con.execute("SELECT department, dataset, reason_en FROM quality.batches WHERE held").fetchall()
    for t in truth:
        reasons = [r for d, ds, r in held if d == t["department"] and ds == t["dataset"]]
        assert reasons, t
        assert t["department"] in reasons[0] and t["dataset"] in reasons[0] and t["field"] in reasons[0]
        assert (
            o.con.execute(
                f"SELECT count(*) FROM staged.{t['dataset']} WHERE department = ?", [t["department"]]
            ).fetchone()[0]
            == 0
        )


def test_unknown_field_is_reported_not_fatal(sim_data, tmp_path, baseline):
    o = ingest(sim_data, tmp_path, faults={"unknown_field": 1.0})
    assert o.con.execute("SELECT count(*) FROM quality.batches WHERE held").fetchone()[0] == 0
    unknown = {f for (fs,) in o.con.execute("SELECT unknown_fields FROM quality.batches").fetchall() for f in fs}
    assert unknown == {"AQ_XZ_NEW"}
    assert set(o.current("penalties", "department, record_id")) == set(
        baseline.current("penalties", "department, record_id")
    )


# -- history -------------------------------------------------------------------------------------------


def test_duplicate_decision_from_two_departments_is_kept_once_and_reported(sim_data, tmp_path):
    o = ingest(sim_data, tmp_path, faults={"duplicates": 0.2})
    truth = o.truth("duplicates")
    assert truth
    reported = {r for (r,) in o.con.execute("SELECT record_id FROM subjects.duplicate_decisions").fetchall()}
    assert {t["record_id"] for t in truth} <= reported
    once = o.con.execute(
        "SELECT count(*) FROM (SELECT authority_code, decision_no FROM subjects.penalties "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    assert once == 0


def test_corrections_supersede_and_revocations_remove(sim_data, tmp_path, baseline):
    o = ingest(sim_data, tmp_path, faults={"corrections": 0.2, "revocations": 0.1})
    revoked = {(t["department"], t["dataset"], t["record_id"]) for t in o.truth("revocations")}
    corrected = o.truth("corrections")
    assert revoked and corrected
    for ds in DATASETS:
        cur = {(d, r) for d, r in o.current(ds, "department, record_id")}
        base = {(d, r) for d, r in baseline.current(ds, "department, record_id")}
        assert cur == {x for x in base if (x[0], ds, x[1]) not in revoked}, ds


def test_late_records_are_landed(sim_data, tmp_path, baseline):
    o = ingest(sim_data, tmp_path, faults={"late_records": 0.2})
    assert o.truth("late_records")
    for ds in DATASETS:
        assert set(o.current(ds, "department, record_id")) == set(baseline.current(ds, "department, record_id"))


# -- encodings and HTTP trouble: nothing lost ---------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        {"gbk": 1.0},
        {"utf8_bom": 1.0, "crlf": 1.0},
        {"numeric_json": 1.0},
        {"http_429": 0.3},
        {"http_5xx": 0.3},
        {"cut_short": 0.2},
        {"stall": 0.03},
        {"expired_cursor": 0.3},
        {"short_pages": 0.5},
        {"page_repeat": 0.5},
    ],
    ids=lambda f: "+".join(f),
)
def test_transport_faults_lose_nothing(faults, sim_data, tmp_path, baseline):
    o = ingest(sim_data, tmp_path, faults=faults, stall_seconds=1.5, page_limit=40)
    _all_landed(o)
    assert o.quarantined() == {}
    for ds in DATASETS:
        assert set(o.current(ds, "department, record_id")) == set(baseline.current(ds, "department, record_id")), ds
    if "page_repeat" in faults:
        assert sum(r.duplicates for r in o.results) > 0


def test_department_down_is_reported_and_the_others_go_on(sim_data, tmp_path, baseline):
    sim = start_simulator(sim_data, port=0, seed=11, faults=())
    sim.set_down("jtj")
    raw = tmp_path / "raw"
    try:
        results = pull_all(sim, tmp_path)
    finally:
        sim.stop()
    down = [r for r in results if r.department == "jtj"]
    assert down and all(r.status == "unavailable" for r in down)
    assert "jtj" in down[0].message_en and "jtj" in down[0].message_zh
    assert all(r.status == "landed" for r in results if r.department != "jtj")
    assert not (raw / "jtj").exists() or landed_departments(raw, "penalties") == ["scj", "yjj", "zjj"]
