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

from assets.resources import DepartmentFeedsResource, ExchangeResource

SHANGHAI = timezone(timedelta(hours=8))


def _end(sim_meta) -> date:
    return date.fromisoformat(sim_meta["end"])


def _at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), SHANGHAI)


@pytest.fixture(scope="module")
def own_sim(sim_data, sim_meta):
    """Our own simulator (the shared one must keep its clock): one JSON and one CSV department."""
    from safecredit.simulator import start_simulator

    with start_simulator(
        sim_data,
        port=0,
        seed=SEED,
        faults=(),
        departments=["yjj", "zjj"],
        sim_now=_at(_end(sim_meta) - timedelta(days=10)),
    ) as sim:
        yield sim


def _home(tmp_path: Path, sim) -> ExchangeResource:
    sim.write_sources(tmp_path / "sources.yaml")
    return ExchangeResource(home=str(tmp_path))


# ------------------------------------------------------------------------------- schedule


def _execute(request: dg.RunRequest, exchange: ExchangeResource, instance) -> dg.ExecuteInProcessResult:
    """Execute a tick's run request as the daemon would: the job of the code location, the
    request's partition, config and tags, the resources pointed at `exchange`'s home."""
    from pipelines.definitions import FULL_RUN, defs

    run_config = {
        **_config(request),
        "resources": {"exchange": {"config": {"home": exchange.home, "as_of": exchange.as_of}}},
    }
    return defs.resolve_job_def(FULL_RUN).execute_in_process(
        run_config=run_config,
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=False,
    )


def _config(request: dg.RunRequest) -> dict:
    rc = request.run_config
    return rc.to_config_dict() if isinstance(rc, dg.RunConfig) else dict(rc)


def _published_versions(home: Path) -> list[str]:
    index = home / "exports" / "index.json"
    if not index.exists():
        return []
    feed = json.loads(index.read_text(encoding="utf-8"))["feeds"]["blacklist"]
    versions = json.loads((home / "exports" / "blacklist" / "versions.json").read_text(encoding="utf-8"))
    assert feed["latest"] == versions["last_successful"]
    return [v["version"] for v in versions["items"] if v["result"] == "success"]


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


def test_nightly_tick_runs_and_publishes(tmp_path, own_sim, sim_meta):
    """The tick requests yesterday's partition with incremental pulls from every source; executing
    that request lands, stages, computes and publishes a new version (it failed every night when the
    schedule requested no partition and no config)."""
    from pipelines.definitions import defs

    end = _end(sim_meta)
    own_sim.set_now(_at(end - timedelta(days=10)))
    exchange = ExchangeResource(home=str(tmp_path), as_of=(end - timedelta(days=10)).isoformat())
    own_sim.write_sources(tmp_path / "sources.yaml")
    sched = defs.resolve_schedule_def("nightly_full_run")
    tick = _at(end - timedelta(days=9), 2)
    with dg.instance_for_test() as instance:
        data = sched.evaluate_tick(
            dg.build_schedule_context(
                instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
            )
        )
        [request] = data.run_requests
        assert request.partition_key == (end - timedelta(days=10)).isoformat()
        ops = _config(request)["ops"]
        assert ops["landing"]["config"] == {"incremental": True, "departments": []}
        result = _execute(request, exchange, instance)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
    [version] = _published_versions(tmp_path)
    manifest = json.loads((tmp_path / "exports" / "blacklist" / version / "manifest.json").read_text("utf-8"))
    assert manifest["row_count"] > 0
    from safecredit import config
    from safecredit.run_summary import read_summary

    summary = read_summary(config.paths(str(tmp_path)), result.run_id)
    assert summary.published and summary.version == version
    assert {(r["department"], r["dataset"]) for r in summary.sources} >= {("yjj", "penalties"), ("zjj", "penalties")}


# ------------------------------------------------------------------------------- change sensor


def _sensor_ctx(exchange, cursor=None):
    from assets.resources import DepartmentFeedsResource

    return dg.build_sensor_context(
        cursor=cursor, resources={"exchange": exchange, "departments": DepartmentFeedsResource()}
    )


def test_change_sensor_polls_the_departments_of_the_sources_file(tmp_path, own_sim, sim_meta):
    """Departments come from the sources file at each tick: none without one, both once written."""
    from pipelines.definitions import defs

    own_sim.set_now(_at(_end(sim_meta) - timedelta(days=10)))
    sensor = defs.resolve_sensor_def("department_changes")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    exchange = ExchangeResource(home=str(tmp_path), sources=str(tmp_path / "sources.yaml"))
    own_sim.write_sources(tmp_path / "sources.yaml")
    first = sensor(_sensor_ctx(exchange))
    assert isinstance(first, dg.RunRequest), first  # never pulled: everything is new
    assert set(first.tags["safecredit/changed"].split(",")) >= {"yjj/penalties", "zjj/penalties"}


def test_change_sensor_requests_a_run_only_on_change_and_the_run_publishes(tmp_path, own_sim, sim_meta):
    from pipelines.definitions import defs

    end = _end(sim_meta)
    own_sim.set_now(_at(end - timedelta(days=10)))
    exchange = ExchangeResource(home=str(tmp_path), as_of=(end - timedelta(days=10)).isoformat())
    own_sim.write_sources(tmp_path / "sources.yaml")
    sensor = defs.resolve_sensor_def("department_changes")
    ctx = _sensor_ctx(exchange)
    first = sensor(ctx)
    assert isinstance(first, dg.RunRequest), first
    cursor = ctx.cursor
    with dg.instance_for_test() as instance:
        assert _execute(first, exchange, instance).success
    assert len(_published_versions(tmp_path)) == 1

    ctx = _sensor_ctx(exchange, cursor)
    second = sensor(ctx)
    assert isinstance(second, dg.SkipReason) and "nothing new" in second.skip_message, second  # same data
    assert ctx.cursor == cursor

    own_sim.set_now(_at(end))  # ten days of new versions, from both departments
    ctx = _sensor_ctx(exchange, cursor)
    third = sensor(ctx)
    assert isinstance(third, dg.RunRequest), third
    assert third.run_key != first.run_key
    assert "yjj/penalties" in third.tags["safecredit/changed"].split(",")
    ops = _config(third)["ops"]
    assert ops["landing"]["config"]["departments"] == sorted(
        {c.split("/")[0] for c in third.tags["safecredit/changed"].split(",")}
    )
    with dg.instance_for_test() as instance:
        assert _execute(third, ExchangeResource(home=str(tmp_path), as_of=end.isoformat()), instance).success
    assert len(_published_versions(tmp_path)) == 2


def test_change_sensor_without_cursor_starts_from_the_landing(tmp_path, own_sim, sim_meta):
    """A sensor switched on for sources already pulled does not ask for what has landed."""
    from pipelines.definitions import defs
    from safecredit import config
    from safecredit.landing import pull

    own_sim.set_now(_at(_end(sim_meta) - timedelta(days=10)))
    exchange = _home(tmp_path, own_sim)
    for dept in config.load_sources(tmp_path / "sources.yaml"):
        for ds in dept.datasets:
            assert pull(dept, ds, exchange.paths.raw).status == "landed"
    result = defs.resolve_sensor_def("department_changes")(_sensor_ctx(exchange))
    assert isinstance(result, dg.SkipReason) and "nothing new" in result.skip_message, result


def test_change_sensor_takes_a_stub_client(tmp_path):
    """The department client is a resource: a stub stands in for HTTP (a dataset that changed)."""
    from assets.resources import DepartmentFeedsResource
    from pipelines.definitions import defs
    from safecredit.connectors.client import Page

    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - {id: stub, name: 测试局, base_url: 'http://127.0.0.1:9', token: t, transport: json,"
        " datasets: [penalties]}\n",
        encoding="utf-8",
    )

    class StubClient:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def catalogue(self):
            return {"datasets": [{"name": "penalties", "transports": ["json"]}]}

        def records_page(self, dataset, *, updated_since, cursor, limit):
            return Page(
                [{"record_id": "r1", "updated_at": "2026-11-20T10:00:00+08:00"}], None, "2026-11-20T12:00:00+08:00", "1"
            )

    class StubFeeds(DepartmentFeedsResource):
        def client(self, dept, *, quick=False):
            return StubClient()

    ctx = dg.build_sensor_context(
        resources={"exchange": ExchangeResource(home=str(tmp_path)), "departments": StubFeeds()}
    )
    request = defs.resolve_sensor_def("department_changes")(ctx)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["safecredit/changed"] == "stub/penalties"
    assert json.loads(ctx.cursor)["stub"]["penalties"]["server_time"] == "2026-11-20T12:00:00+08:00"


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


def test_run_failure_alert_reaches_the_webhook():
    from assets.resources import AlertWebhookResource
    from pipelines.sensors import alert_on_run_failure

    recv = _Receiver()
    alerts = AlertWebhookResource(url=recv.url, ui_url="http://dagster.test:3000/")
    try:
        with dg.instance_for_test() as instance:
            result = _doomed.execute_in_process(instance=instance, raise_on_error=False)
            assert not result.success
            run_id = result.dagster_run.run_id
            failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].get_dagster_event()
            ctx = dg.build_run_status_sensor_context(
                sensor_name="alert_on_run_failure",
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                resources={"alerts": alerts},
            ).for_run_failure()
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
    from safecredit import config
    from safecredit.freshness import max_days, newest_updated_at, source_freshness
    from safecredit.landing import pull
    from safecredit.policy import policy_for
    from safecredit.publish.gate import staleness_failures

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
    from pipelines.runner import _instance
    from safecredit import config

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    paths = config.paths(str(tmp_path))
    home = paths.dagster_home
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(
        "# local instance for safecredit runs; see docs for PostgreSQL storage\ntelemetry:\n  enabled: false\n",
        encoding="utf-8",
    )  # an old default
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
    import shutil

    import psycopg

    from assets.ingest import landing_assets
    from pipelines.definitions import freshness_checks

    url = pg.create_database("dagster_ops")
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(
        Path(__file__).resolve().parent.parent / "deploy" / "dagster.postgres.yaml", dagster_home / "dagster.yaml"
    )
    # dagster-postgres needs psycopg2 (SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3)
    monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql+psycopg://", "postgresql+psycopg2://"))
    end = _end(sim_meta)
    own_sim.set_now(_at(end - timedelta(days=10)))
    home = tmp_path / "home"
    exchange = ExchangeResource(home=str(home), as_of=end.isoformat())
    own_sim.write_sources(home / "sources.yaml")

    [landing] = landing_assets
    penalties = dg.AssetKey(["landing", "penalties"])
    check = next(c for c in freshness_checks if penalties in {k.asset_key for k in c.check_keys})
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        result = dg.materialize(
            [landing, check],
            instance=instance,
            resources={"exchange": exchange, "departments": DepartmentFeedsResource()},
            partition_key=(end - timedelta(days=1)).isoformat(),
            selection=[penalties],
            run_config={"ops": {"landing": {"config": {"incremental": True, "departments": ["yjj"]}}}},
        )
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
