"""The real Dagster daemon: `dagster dev` (webserver + daemon) on a temporary DAGSTER_HOME runs what
the schedule, a backfill and the change sensor request, and each run publishes a version.

The code location is the project's own, built with a cron of every minute and a 5-second sensor
(tests/daemon/exchange_every_minute.py); everything is switched on through the GraphQL API, the
way an operator's clicks in the UI do it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path

import duckdb
import pytest
import requests
from conftest import SEED

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = timezone(timedelta(hours=8))
LOCATION, REPOSITORY = "exchange", "__repository__"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, dtime(hour), SHANGHAI)


class Dagster:
    """`dagster dev -w tests/daemon/workspace.yaml` and a GraphQL client for it."""

    def __init__(self, home: Path, dagster_home: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.log = open(dagster_home / "dev.log", "w")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "SAFECREDIT_HOME": str(home),
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "GX_ANALYTICS_ENABLED": "false",
        }
        env.pop("SAFECREDIT_SOURCES", None)
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=ROOT / "tests" / "daemon",
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for(lambda: self._location_loaded(), 240, "the code location to load")

    def query(self, text: str, variables: dict | None = None) -> dict:
        r = requests.post(self.url, json={"query": text, "variables": variables or {}}, timeout=60)
        r.raise_for_status()
        body = r.json()
        assert "errors" not in body, body
        return body["data"]

    def _location_loaded(self) -> bool:
        try:
            data = self.query(
                "{ workspaceOrError { ... on Workspace { locationEntries { name "
                "locationOrLoadError { __typename } } } } }"
            )
        except (requests.ConnectionError, requests.HTTPError):
            return False
        entries = data["workspaceOrError"]["locationEntries"]
        return any(
            e["name"] == LOCATION and e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries
        )

    def wait_for(self, ready, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited while waiting for {what}"
            value = ready()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; see {self.log.name}")

    def runs(self, run_ids: list[str] | None = None, **tags) -> list[dict]:
        flt = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if run_ids:
            flt["runIds"] = run_ids
        data = self.query(
            """query($f: RunsFilter) { runsOrError(filter: $f) {
            ... on Runs { results { runId status tags { key value } } } } }""",
            {"f": flt},
        )
        return data["runsOrError"]["results"]

    def wait_for_runs(self, timeout: float, what: str, run_ids: list[str] | None = None, **tags) -> list[dict]:
        """Every run with these ids or tags finished (at least one), all of them successful."""

        def done():
            runs = self.runs(run_ids, **tags)
            if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                return runs
            return None

        runs = self.wait_for(done, timeout, what)
        assert all(r["status"] == "SUCCESS" for r in runs), (runs, self.log.name)
        return runs

    def _instigator(self, kind: str, name: str) -> dict:
        kind_cap = kind.capitalize()
        data = self.query(
            f"""query($s: {kind_cap}Selector!) {{ {kind}OrError({kind}Selector: $s) {{
            ... on {kind_cap} {{ {kind}State {{ status ticks(limit: 50) {{ status runIds }} }} }} }} }}""",
            {"s": {**SELECTOR, f"{kind}Name": name}},
        )
        return data[f"{kind}OrError"][f"{kind}State"]

    def instigator_tick(self, kind: str, name: str) -> list[str] | None:
        """The run ids of the first finished tick of a schedule or sensor that requested runs."""
        ticks = [t for t in self._instigator(kind, name)["ticks"] if t["status"] == "SUCCESS" and t["runIds"]]
        return ticks[-1]["runIds"] if ticks else None

    def switch_off(self, kind: str, name: str) -> None:
        """Back to the status in code (stopped). The daemon records its first iteration's state just
        after the tick it fired, so a switch-off in that instant is undone: switch off until it holds."""
        stopped_polls: list[bool] = []

        def off():
            if self._instigator(kind, name)["status"] == "STOPPED":
                stopped_polls.append(True)
                return len(stopped_polls) >= 3  # three polls a second apart
            stopped_polls.clear()
            self.query(
                f"mutation($s: {kind.capitalize()}Selector!) {{ reset{kind.capitalize()}("
                f"{kind}Selector: $s) {{ __typename }} }}",
                {"s": {**SELECTOR, f"{kind}Name": name}},
            )
            return False

        self.wait_for(off, 60, f"{kind} {name} to stay off")

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def _published(home: Path) -> list[str]:
    path = home / "exports" / "blacklist" / "versions.json"
    if not path.exists():
        return []
    return [i["version"] for i in json.loads(path.read_text(encoding="utf-8"))["items"] if i["result"] == "success"]


def _staged_days(home: Path, dept: str) -> set[date]:
    con = duckdb.connect(str(home / "warehouse" / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT DISTINCT CAST(timezone('Asia/Shanghai', updated_at) AS DATE) FROM staged.penalties "
            "WHERE department = ?",
            [dept],
        ).fetchall()
    finally:
        con.close()
    return {d for (d,) in rows}


@pytest.fixture(scope="module")
def live(sim_data, sim_meta, tmp_path_factory):
    """A simulator (yjj JSON, zjj CSV) at ten days before the data's end, and `dagster dev`."""
    from safecredit.simulator import start_simulator

    end = date.fromisoformat(sim_meta["end"])
    home = tmp_path_factory.mktemp("daemon-home")
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "safecredit" / "dagster.local.yaml", dagster_home / "dagster.yaml")
    with start_simulator(
        sim_data, port=0, seed=SEED, faults=(), departments=["yjj", "zjj"], sim_now=_at(end - timedelta(days=10))
    ) as sim:
        sim.write_sources(home / "sources.yaml")
        dev = Dagster(home, dagster_home)
        try:
            yield {"dev": dev, "sim": sim, "home": home, "end": end}
        finally:
            dev.close()


SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}


def test_schedule_tick_runs_through_the_daemon_and_publishes(live):
    dev, home = live["dev"], live["home"]
    data = dev.query(
        """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
        __typename ... on ScheduleStateResult { scheduleState { id status } } ... on PythonError { message } } }""",
        {"s": {**SELECTOR, "scheduleName": "nightly_full_run"}},
    )
    state = data["startSchedule"]["scheduleState"]
    assert state["status"] == "RUNNING", data
    try:
        first = dev.wait_for(
            lambda: dev.instigator_tick("schedule", "nightly_full_run"), 150, "the schedule to fire a tick"
        )
    finally:  # one tick is enough: no second run every minute
        dev.switch_off("schedule", "nightly_full_run")
    runs = dev.wait_for_runs(600, "the scheduled run", first)
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["dagster/partition"] == (datetime.now(SHANGHAI).date() - timedelta(days=1)).isoformat()
    assert len(_published(home)) >= 1
    assert _staged_days(home, "yjj") and _staged_days(home, "zjj")


def _sent_days(sim_data: Path, dept: str) -> set[date]:
    """Days (Asia/Shanghai) on which `dept` stamped a penalty version in the generated data."""
    rows = duckdb.sql(
        f"SELECT DISTINCT CAST(timezone('Asia/Shanghai', updated_at::TIMESTAMPTZ) AS DATE) "
        f"FROM read_parquet('{sim_data}/{dept}/penalties/*.parquet')"
    ).fetchall()
    return {d for (d,) in rows}


def test_backfill_of_one_department_over_three_days_not_yet_landed(live, sim_data):
    """Three days after the simulator's last fetch, ending on a day zjj sent a penalty, for zjj only
    (the run tag the backfill dialog sets): exactly those days of zjj land, nothing of yjj, and the
    backfill publishes."""
    dev, home, sim, end = live["dev"], live["home"], live["sim"], live["end"]
    before_yjj, before_zjj, before = _staged_days(home, "yjj"), _staged_days(home, "zjj"), _published(home)
    sim.set_now(_at(end))
    sent = _sent_days(sim_data, "zjj")
    last = max(d for d in sent if end - timedelta(days=10) < d < end)
    days = [last - timedelta(days=i) for i in (2, 1, 0)]
    assert not set(days) & _staged_days(home, "zjj")
    graph = dev.query("{ assetNodes { assetKey { path } } }")["assetNodes"]
    keys = [{"path": n["assetKey"]["path"]} for n in graph]
    data = dev.query(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
        __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack } } }""",
        {
            "p": {
                "partitionNames": [d.isoformat() for d in days],
                "assetSelection": keys,
                "tags": [{"key": "safecredit/departments", "value": "zjj"}],
            }
        },
    )
    backfill = data["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill

    def finished():
        b = dev.query(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
            ... on PartitionBackfill { status } } }""",
            {"id": backfill["backfillId"]},
        )
        status = b["partitionBackfillOrError"]["status"]
        return (
            status if status in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED") else None
        )

    assert dev.wait_for(finished, 900, "the backfill") in ("COMPLETED", "COMPLETED_SUCCESS")
    dev.wait_for_runs(60, "the backfill's runs", **{"dagster/backfill": backfill["backfillId"]})
    landed = _staged_days(home, "zjj")
    assert landed - set(days) == before_zjj and set(days) & sent <= landed and set(days) & sent
    assert _staged_days(home, "yjj") == before_yjj  # the other department was not asked
    assert len(_published(home)) == len(before) + 1


def test_change_sensor_sees_a_new_record_and_its_run_publishes(live):
    dev, home, sim, end = live["dev"], live["home"], live["sim"], live["end"]
    sim.set_now(_at(end))  # yjj has ten days it has not sent us yet
    before = _published(home)
    data = dev.query(
        """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
        __typename ... on Sensor { sensorState { id status } } ... on PythonError { message } } }""",
        {"s": {**SELECTOR, "sensorName": "department_changes"}},
    )
    state = data["startSensor"]["sensorState"]
    assert state["status"] == "RUNNING", data
    try:
        first = dev.wait_for(
            lambda: dev.instigator_tick("sensor", "department_changes"), 180, "the sensor to request a run"
        )
    finally:
        dev.switch_off("sensor", "department_changes")
    runs = dev.wait_for_runs(600, "the sensor's run", first)
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert "yjj/penalties" in tags["safecredit/changed"].split(",")
    assert max(_staged_days(home, "yjj")) > end - timedelta(days=10)
    assert len(_published(home)) == len(before) + 1


CHROMIUM = next((c for c in (shutil.which("chromium"), "/usr/bin/chromium") if c and Path(c).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package `chromium`: `make system-deps`)")
def test_the_ui_shows_per_table_lineage_and_the_gate(live, tmp_path):
    """Headless Chromium on the UI: a feed's upstream lineage (rules table, staged datasets, landing)
    and the publication gate's checks on its rule table. SAFECREDIT_UPDATE_DOCS=1 copies the
    screenshots to docs/."""
    dev = live["dev"]
    dev.query("mutation { setNuxSeen }")  # the first-visit newsletter dialog would cover the graph
    base = dev.url.removesuffix("/graphql")
    pages = {
        "asset-lineage.png": "/assets/feeds/blacklist?view=lineage&lineageScope=upstream&lineageDepth=4",
        "asset-checks.png": "/assets/rules/blacklist?view=checks",
    }
    for name, path in pages.items():
        png = tmp_path / name
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=30000",
                "--window-size=1600,1000",
                f"--screenshot={png}",
                base + path,
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        assert png.stat().st_size > 50_000, name  # a drawn page, not a blank one
        if os.environ.get("SAFECREDIT_UPDATE_DOCS") == "1":
            shutil.copy(png, ROOT / "docs" / name)
    # what the pages draw, asked of the same API: the lineage and the gate's blocking checks
    node = dev.query("""{ assetNodeOrError(assetKey: {path: ["feeds", "blacklist"]}) { ... on AssetNode {
        dependencyKeys { path } } } }""")["assetNodeOrError"]
    assert node["dependencyKeys"] == [{"path": ["rules", "blacklist"]}]
    checks = dev.query("""{ assetNodeOrError(assetKey: {path: ["rules", "blacklist"]}) { ... on AssetNode {
        assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } } }""")
    found = {c["name"]: c["blocking"] for c in checks["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    assert found == {
        "unique_ids": True,
        "no_full_id_numbers": True,
        "shrink_within_policy": True,
        "sources_fresh": True,
    }
