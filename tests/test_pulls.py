"""A run's pulls overlap across departments, each department within its bound of requests in flight
(safecredit/pulls.py), and every pull lands as it would alone."""

from __future__ import annotations

import json

from safecredit import config
from safecredit.connectors.client import DepartmentClient
from safecredit.landing import SourceDir
from safecredit.pulls import PullBounds, pull_all


def _pull(sim, tmp_path, bounds: PullBounds, only=None):
    depts = config.load_sources(sim.write_sources(tmp_path / "sources.yaml"))
    tasks = [(d, ds) for d in depts for ds in d.datasets if only is None or (d.id, ds) in only]
    raw = tmp_path / "raw"
    got = list(
        pull_all(tasks, raw, client_for=lambda d, gate: DepartmentClient(d, gate=gate), bounds=bounds, csv_workers=4)
    )
    return tasks, raw, got


def test_pulls_overlap_across_departments_within_each_departments_bound(tmp_path, sim_data):
    from safecredit.simulator import start_simulator

    with start_simulator(sim_data, port=0, seed=7, faults=()) as sim:
        sim.meet_departments(2)  # the first answers wait for a second department: seen only if asked at once
        tasks, raw, got = _pull(sim, tmp_path, PullBounds(parallel_pulls=16, department_requests_in_flight=2))
    assert sorted((d.id, ds) for d, ds, _ in got) == sorted((d.id, ds) for d, ds in tasks)
    assert all(r.status == "landed" and r.rows > 0 for _, _, r in got), [r.as_dict() for _, _, r in got]
    assert sim.max_departments_busy > 1
    assert set(sim.max_in_flight) == {d.id for d, _ in tasks}
    assert all(n <= 2 for n in sim.max_in_flight.values()), sim.max_in_flight
    for dept, ds, r in got:  # each pull landed as alone: its fetch, manifest and watermark
        src = SourceDir(raw, dept.id, ds)
        [fetch] = src.fetches()
        manifest = json.loads((fetch / "manifest.json").read_text("utf-8"))
        assert (manifest["department"], manifest["dataset"], manifest["rows"]) == (dept.id, ds, r.rows)
        assert src.state()["last_status"] == "landed" and src.state()["last_fetch"] == fetch.name


def test_one_pull_at_a_time_is_seen_as_one_department_at_a_time(tmp_path, sim_data):
    """The control: the same accounting sees a sequential landing as such."""
    from safecredit.simulator import start_simulator

    with start_simulator(sim_data, port=0, seed=7, faults=()) as sim:
        sim.meet_departments(2, timeout=0.5)
        only = {("yjj", "penalties"), ("jtj", "penalties"), ("scj", "penalties")}
        _, _, got = _pull(sim, tmp_path, PullBounds(parallel_pulls=1), only)
    assert len(got) == 3 and all(r.status == "landed" for _, _, r in got)
    assert sim.max_departments_busy == 1
