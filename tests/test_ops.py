"""Operations in Dagster: schedule, change sensors, failure alerts, freshness, PostgreSQL instance."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from conftest import SEED
from pipelines.resources import ExchangeResource

SHANGHAI = timezone(timedelta(hours=8))


def _end(sim_meta) -> date:
    return date.fromisoformat(sim_meta["end"])


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), SHANGHAI)


@pytest.fixture(scope="module")
def own_sim(sim_data, sim_meta):
    """Our own simulator (the shared one must keep its clock): one JSON and one CSV department."""
    from safecredit.simulator import start_simulator

    with start_simulator(sim_data, port=0, seed=SEED, faults=(), departments=["yjj", "zjj"],
                         sim_now=_at(_end(sim_meta) - timedelta(days=10))) as sim:
        yield sim


def _home(tmp_path: Path, sim) -> ExchangeResource:
    sim.write_sources(tmp_path / "sources.yaml")
    return ExchangeResource(home=str(tmp_path))


# ------------------------------------------------------------------------------- schedule

def test_nightly_schedule_next_tick_is_two_oclock_shanghai():
    from dagster._utils.schedules import cron_string_iterator

    from pipelines.definitions import defs

    sched = defs.resolve_schedule_def("nightly_full_run")
    assert sched.default_status == dg.DefaultScheduleStatus.STOPPED
    start = datetime(2026, 11, 22, 15, 0, tzinfo=SHANGHAI)
    ticks = cron_string_iterator(start.timestamp(), sched.cron_schedule, sched.execution_timezone)
    nxt = next(ticks)
    assert nxt.astimezone(SHANGHAI) == datetime(2026, 11, 23, 2, 0, tzinfo=SHANGHAI)
    assert nxt.astimezone(timezone.utc).hour == 18  # 02:00 +08:00 is 18:00 UTC the day before
    assert next(ticks).astimezone(SHANGHAI) == datetime(2026, 11, 24, 2, 0, tzinfo=SHANGHAI)
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=nxt)
        data = sched.evaluate_tick(ctx)
        assert len(data.run_requests) == 1


# ------------------------------------------------------------------------------- change sensors

def test_department_sensors_come_from_the_sources_file(tmp_path, own_sim, monkeypatch):
    from pipelines.sensors import configured_department_ids

    monkeypatch.setenv("SAFECREDIT_SOURCES", str(tmp_path / "absent.yaml"))
    assert configured_department_ids() == []
    own_sim.write_sources(tmp_path / "sources.yaml")
    monkeypatch.setenv("SAFECREDIT_SOURCES", str(tmp_path / "sources.yaml"))
    assert configured_department_ids() == ["yjj", "zjj"]


@pytest.mark.parametrize("dept_id", ["yjj", "zjj"])  # JSON pages and CSV-only
def test_department_sensor_requests_a_run_only_on_change(tmp_path, own_sim, sim_meta, dept_id):
    from pipelines.definitions import full_run
    from pipelines.sensors import department_sensor

    end = _end(sim_meta)
    own_sim.set_now(_at(end - timedelta(days=10)))
    exchange = _home(tmp_path, own_sim)
    sensor = department_sensor(dept_id, full_run)
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED

    ctx = dg.build_sensor_context(cursor=None, resources={"exchange": exchange})
    first = sensor(ctx)
    assert isinstance(first, dg.RunRequest), first  # never pulled: everything is new
    assert first.run_key and first.run_key.startswith(f"{dept_id}:")
    ops = first.run_config["ops"]
    assert ops["landing_penalties"]["config"] == {"incremental": True, "departments": [dept_id]}
    cursor = ctx.cursor
    assert cursor

    ctx = dg.build_sensor_context(cursor=cursor, resources={"exchange": exchange})
    second = sensor(ctx)
    assert isinstance(second, dg.SkipReason) and "nothing new" in second.skip_message, second  # same data
    assert ctx.cursor == cursor

    own_sim.set_now(_at(end))  # ten days of new versions
    ctx = dg.build_sensor_context(cursor=cursor, resources={"exchange": exchange})
    third = sensor(ctx)
    assert isinstance(third, dg.RunRequest), third
    assert third.run_key != first.run_key
    assert "penalties" in third.tags["safecredit/changed"].split(",")


def test_department_sensor_without_cursor_starts_from_the_landing(tmp_path, own_sim, sim_meta):
    """A sensor switched on for a source already pulled does not ask for what has landed."""
    from pipelines.definitions import full_run
    from pipelines.sensors import department_sensor
    from safecredit import config
    from safecredit.landing import pull

    own_sim.set_now(_at(_end(sim_meta) - timedelta(days=10)))
    exchange = _home(tmp_path, own_sim)
    dept = next(d for d in config.load_sources(tmp_path / "sources.yaml") if d.id == "yjj")
    for ds in dept.datasets:
        assert pull(dept, ds, exchange.paths.raw).status == "landed"
    sensor = department_sensor("yjj", full_run)
    result = sensor(dg.build_sensor_context(resources={"exchange": exchange}))
    assert isinstance(result, dg.SkipReason) and "nothing new" in result.skip_message, result


# ------------------------------------------------------------------------------- failure alerts

class _Receiver:
    def __init__(self):
        self.bodies: list[dict] = []
        got = self.bodies

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                got.append(json.loads(self.rfile.read(n).decode("utf-8")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/safecredit"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@dg.op
def _fetch_that_breaks():
    raise RuntimeError("department yjj answered garbage (test)")


@dg.job
def _doomed():
    _fetch_that_breaks()


def test_run_failure_alert_reaches_the_webhook(monkeypatch):
    from pipelines.sensors import alert_on_run_failure

    recv = _Receiver()
    monkeypatch.setenv("SAFECREDIT_ALERT_WEBHOOK", recv.url)
    monkeypatch.setenv("SAFECREDIT_DAGSTER_URL", "http://dagster.test:3000/")
    try:
        with dg.instance_for_test() as instance:
            result = _doomed.execute_in_process(instance=instance, raise_on_error=False)
            assert not result.success
            run_id = result.dagster_run.run_id
            failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].get_dagster_event()
            ctx = dg.build_run_status_sensor_context(
                sensor_name="alert_on_run_failure", dagster_event=failure, dagster_instance=instance,
                dagster_run=result.dagster_run).for_run_failure()
            alert_on_run_failure(ctx)
    finally:
        recv.close()
    assert len(recv.bodies) == 1
    body = recv.bodies[0]
    assert body["run_id"] == run_id and body["job"] == "_doomed" and body["event"] == "run_failure"
    assert [s["step"] for s in body["failed_steps"]] == ["_fetch_that_breaks"]
    assert "answered garbage" in body["failed_steps"][0]["error"]
    assert body["error"]
    assert body["link"] == f"http://dagster.test:3000/runs/{run_id}"


# ------------------------------------------------------------------------------- freshness

def test_freshness_marks_a_silent_source_late(tmp_path, own_sim, sim_meta):
    """yjj answers (so staleness is fine) but its newest version is 10 days old: late."""
    from assets.publish import staleness_failures
    from safecredit import config
    from safecredit.freshness import max_days, newest_updated_at, source_freshness
    from safecredit.landing import pull
    from safecredit.policy import policy_for

    end = _end(sim_meta)
    own_sim.set_now(_at(end - timedelta(days=10)))
    exchange = _home(tmp_path, own_sim)
    dept = next(d for d in config.load_sources(tmp_path / "sources.yaml") if d.id == "yjj")
    assert pull(dept, "penalties", exchange.paths.raw).status == "landed"
    pol = policy_for(end)
    assert max_days(pol, "yjj", "penalties") == 7 and max_days(pol, "yjj", "accidents") == 30

    newest = newest_updated_at(exchange.paths.raw, "yjj", "penalties")
    assert newest is not None and newest <= _at(end - timedelta(days=10))
    assert (exchange.paths.raw / "yjj" / "penalties" / "_freshness.json").exists()  # cached

    just_after = source_freshness(exchange.paths.raw, pol, newest + timedelta(days=1))
    assert [r["late"] for r in just_after] == [False]
    judged = _at(end, 23)
    late = [r for r in source_freshness(exchange.paths.raw, pol, judged) if r["late"]]
    assert [(r["department"], r["dataset"]) for r in late] == [("yjj", "penalties")]
    assert late[0]["age_days"] >= 10 and late[0]["max_days"] == 7 and "late" in late[0]["message_en"]
    # the fetch itself is recent: the staleness assertion (last successful fetch) does not see it
    assert staleness_failures(exchange.paths.raw, 7, max(judged, datetime.now(SHANGHAI))) == []


# ------------------------------------------------------------------------------- instances

def test_runner_instance_limits_the_warehouse_pool_to_one(tmp_path, monkeypatch):
    from safecredit import config
    from safecredit.runner import _instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    paths = config.paths(str(tmp_path))
    home = paths.dagster_home
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("# local instance for safecredit runs; see docs for PostgreSQL storage\n"
                                       "telemetry:\n  enabled: false\n", encoding="utf-8")  # an old default
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # restored after the test (_instance sets it)
    instance = _instance(paths)
    try:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert "concurrency:" in (home / "dagster.yaml").read_text(encoding="utf-8")
    finally:
        instance.dispose()


@pytest.fixture(scope="module")
def pg(request):
    from api_server import shared_cluster

    return shared_cluster(request.config)


def test_landing_run_on_a_postgres_instance(tmp_path, pg, own_sim, sim_meta, monkeypatch):
    """A run against deploy/dagster.postgres.yaml: stored in PostgreSQL, freshness check WARNs."""
    import psycopg
    import shutil

    from assets.ingest import landing_assets
    from pipelines.definitions import freshness_checks

    url = pg.create_database("dagster_ops")
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "deploy" / "dagster.postgres.yaml",
                dagster_home / "dagster.yaml")
    # dagster-postgres needs psycopg2 (SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3)
    monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql+psycopg://", "postgresql+psycopg2://"))
    end = _end(sim_meta)
    own_sim.set_now(_at(end - timedelta(days=10)))
    home = tmp_path / "home"
    exchange = ExchangeResource(home=str(home), as_of=end.isoformat())
    own_sim.write_sources(home / "sources.yaml")

    landing = next(a for a in landing_assets if a.key.to_user_string() == "landing_penalties")
    check = next(c for c in freshness_checks if landing.key in {k.asset_key for k in c.check_keys})
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        result = dg.materialize(
            [landing, check], instance=instance, resources={"exchange": exchange},
            partition_key=(end - timedelta(days=1)).isoformat(),
            run_config={"ops": {"landing_penalties": {"config": {"incremental": True, "departments": ["yjj"]}}}})
        assert result.success  # a WARN check does not fail the run
        evals = result.get_asset_check_evaluations()
        assert len(evals) == 1 and not evals[0].passed
        assert evals[0].severity == dg.AssetCheckSeverity.WARN
        assert evals[0].metadata["late"].value == ["yjj/penalties"]
        run_id = result.run_id
        assert instance.get_run_by_id(run_id).is_success
    finally:
        instance.dispose()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
        row = con.execute("SELECT status FROM runs WHERE run_id = %s", [run_id]).fetchone()
        n_events = con.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [run_id]).fetchone()[0]
    assert row == ("SUCCESS",) and n_events > 5
