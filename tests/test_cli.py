"""The command line: lazy imports, clear messages and the exit codes of operations.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "safecredit"


def sc(*args, env=None, cwd=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=120)


def test_help_lists_every_command_of_operations_md():
    r = sc("--help")
    assert r.returncode == 0
    for cmd in ("simulate", "run", "replay", "explain", "publish", "serve", "keys", "signing-key", "check"):
        assert cmd in r.stdout


def test_cli_module_does_not_import_heavy_libraries():
    code = (
        "import sys, safecredit.cli; "
        "heavy = [m for m in ('dagster', 'great_expectations', 'pandas', 'duckdb', 'polars') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_missing_sources_file_is_a_bilingual_usage_error(tmp_path):
    r = sc("run", "--home", str(tmp_path))
    assert r.returncode == 2
    assert "找不到数据源配置文件" in r.stderr and "Sources file" in r.stderr
    assert "Traceback" not in r.stderr


def test_unset_variable_in_sources_is_exit_2(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - id: yjj\n    base_url: http://127.0.0.1:9\n    token: ${SC_TEST_UNSET_TOKEN}\n"
        "    datasets: [penalties]\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SC_TEST_UNSET_TOKEN"}
    r = subprocess.run([str(BIN), "run", "--home", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert "SC_TEST_UNSET_TOKEN" in r.stderr and "Traceback" not in r.stderr


def test_unknown_dataset_in_sources_names_the_place(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - id: yjj\n    base_url: http://127.0.0.1:9\n    token: t\n    datasets: [penalty]\n",
        encoding="utf-8",
    )
    r = sc("run", "--home", str(tmp_path))
    assert r.returncode == 2
    assert "penalty" in r.stderr and "departments[0]" in r.stderr


def test_second_writer_gets_exit_3(tmp_path):
    """The warehouse lock is shared: while one process holds it, `run` exits 3 at once."""
    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - id: yjj\n    base_url: http://127.0.0.1:9\n    token: t\n    datasets: [penalties]\n",
        encoding="utf-8",
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from safecredit import config; from safecredit.warehouse import writer_lock\n"
            f"with writer_lock(config.paths({str(tmp_path)!r}), 'test holder'):\n"
            "    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = sc("run", "--home", str(tmp_path))
        assert r.returncode == 3, r.stderr
        assert "test holder" in r.stderr
    finally:
        holder.communicate("", timeout=30)


def test_explain_shows_calendar_gaps_principal_gaps_and_decision_only_entries(tmp_path):
    """rules.md §3: what the rules could not settle is shown, not hidden. A notice period running into
    2027 (no published calendar): dates unknown, pending. A B1 unit whose principal of the time nobody
    names: no principal listed. A listing decision no inferred entry matches: an entry of its own.
    The CLI (over the warehouse) and the API's explain (over the published row) say the same."""
    import json
    from datetime import date

    from rules_fixtures import build_warehouse, enterprise, listing_decision, penalty, uscc

    from safecredit.explain import entry_gaps
    from safecredit.publish import FEEDS
    from safecredit.publish.formats import prepare

    late = penalty(1, 1, "2026-12-28", AQ_WFDM="UNLICENSED_OPERATION")
    nameless = penalty(2, 2, "2026-06-01", AQ_WFDM="UNLICENSED_OPERATION")
    other = penalty(3, 3, "2026-06-01")  # an ordinary penalty: nothing inferred
    decided = listing_decision(1, uscc(3), other["CF_WSH"], "B4", "2026-07-01")
    ents = [enterprise(1), enterprise(2, QY_ZYFZR=None, QY_ZYFZR_ZJHM=None), enterprise(3)]
    data = {"yjj": {"enterprises": ents, "penalties": [late, nameless, other], "listing_decisions": [decided]}}
    con = build_warehouse(tmp_path / "home" / "warehouse", data, date(2026, 12, 31))
    ids = dict(con.execute("SELECT decision_no, entry_id FROM rules.blacklist WHERE subject_type = 'unit'").fetchall())
    published = prepare(FEEDS["blacklist"], con.sql("SELECT * FROM rules.blacklist").to_arrow_table()).table.to_pylist()
    con.close()

    def explained(decision_no):
        r = sc("explain", ids[decision_no], "--home", str(tmp_path / "home"), "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    cal = explained(late["CF_WSH"])
    assert [g["gap"] for g in cal["gaps"]] == ["calendar_year_unpublished"]
    assert cal["gaps"][0]["year"] == 2027 and cal["gaps"][0]["start_date"] == "unknown"
    assert "2027" in cal["gaps"][0]["message_zh"] and "unknown" in cal["gaps"][0]["message_en"]
    assert (cal["entry"]["status"], cal["entry"]["start_date"]) == ("pending", None)

    nobody = explained(nameless["CF_WSH"])
    assert [g["rule_id"] for g in nobody["gaps"]] == ["LISTING-PRINCIPAL-UNKNOWN"]
    assert "主要负责人" in nobody["gaps"][0]["message_zh"] and "principal" in nobody["gaps"][0]["message_en"]

    own = explained(other["CF_WSH"])
    assert [g["gap"] for g in own["gaps"]] == ["decision_only"] and own["entry"]["decided"] is True
    assert own["gaps"][0]["listing_decision_no"] == decided["MD_WSH"]
    assert [d["record_id"] for d in own["listing_decisions"]] == ["md-1"]

    # the API's explain reads the published row: the same gaps
    by_id = {row["entry_id"]: row for row in published}
    for answer in (cal, nobody, own):
        assert entry_gaps(by_id[answer["id"]]) == answer["gaps"]
    # the readable form prints them
    text = sc("explain", ids[nameless["CF_WSH"]], "--home", str(tmp_path / "home"))
    assert text.returncode == 0 and "LISTING-PRINCIPAL-UNKNOWN" in text.stdout
