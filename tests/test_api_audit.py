"""The audit spool (issue 11): a database outage loses no audit row, a killed process loses none of
the rows it spooled, and a full spool answers 503 rather than serve unaudited."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from api_server import copy_home, running, shared_cluster
from sqlalchemy import text


@pytest.fixture(scope="module")
def pg_cluster(request):
    return shared_cluster(request.config)


def _unit_code(home: Path) -> str:
    import pyarrow.parquet as pq

    index = json.loads((home / "exports" / "index.json").read_text(encoding="utf-8"))
    version = index["feeds"]["credit_scores"]["latest"]
    table = pq.read_table(home / "exports" / "credit_scores" / version / "full.parquet", columns=["uscc"])
    return table.column("uscc")[0].as_py()


def _audit_count(engine, consumer: str) -> dict[int, int]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT status, count(*) FROM audit_log WHERE consumer = :c GROUP BY status"), {"c": consumer}
        )
        return dict(rows.fetchall())


def test_a_postgresql_outage_loses_no_audit_row_and_a_full_spool_answers_503(
    pipeline_run, pg_cluster, tmp_path_factory
):
    home = copy_home(pipeline_run["home"], tmp_path_factory.mktemp("audit-home"))
    db = pg_cluster.create_database(f"sc_audit_{uuid.uuid4().hex[:8]}")
    code = _unit_code(home)
    # the key is read before the outage and cached through it; the spool holds 20 rows (then 503)
    with running(home, db, auth_cache_seconds=600, audit_max_spooled=20) as server:
        audit = server.service.audit
        key = server.service.keys.create("outage", ["restrictions:read"], rate_per_second=10_000, burst=10_000)[1]
        assert server.get(f"/v1/restrictions/{code}", key).status_code == 200
        assert audit.flush()
        pg_cluster.pause()
        try:
            statuses = [server.get(f"/v1/restrictions/{code}", key).status_code for _ in range(25)]
            # served while the rows wait in the spool (18 = 90% of it), then refused, never unaudited
            assert statuses == [200] * 18 + [503] * 7, statuses
            assert not audit.flush(timeout=0.5)
            assert audit.pending == 20  # 18 answers + 2 refusals fit; 5 refusals were counted as dropped
            assert audit.dropped == 5
        finally:
            pg_cluster.resume()
        assert audit.flush(timeout=60)
        assert audit.pending == 0
        assert server.get(f"/v1/restrictions/{code}", key).status_code == 200
        assert audit.flush()
        assert _audit_count(server.service.keys.engine, "outage") == {200: 20, 503: 2}


def test_calls_keep_being_answered_and_audited_while_postgresql_is_away_past_the_key_cache(
    pipeline_run, pg_cluster, tmp_path_factory
):
    home = copy_home(pipeline_run["home"], tmp_path_factory.mktemp("audit-home-keys"))
    db = pg_cluster.create_database(f"sc_audit_{uuid.uuid4().hex[:8]}")
    code = _unit_code(home)
    # a key cache of 50 ms: during the outage every call finds its key's entry expired
    with running(home, db, auth_cache_seconds=0.05) as server:
        keys, audit = server.service.keys, server.service.audit
        key = keys.create("outage-keys", ["restrictions:read"], rate_per_second=10_000, burst=10_000)[1]
        assert server.get(f"/v1/restrictions/{code}", key).status_code == 200
        assert audit.flush()
        pg_cluster.pause()
        try:
            statuses = []
            deadline = time.monotonic() + 60
            # until a revalidation of the cached key has failed (the database is away), bounded
            while keys.refresh_failures == 0 and time.monotonic() < deadline:
                statuses.append(server.get(f"/v1/restrictions/{code}", key).status_code)
            assert keys.refresh_failures > 0
            statuses += [server.get(f"/v1/restrictions/{code}", key).status_code for _ in range(5)]
            assert set(statuses) == {200}, statuses  # the key was not verified against a dead database
        finally:
            pg_cluster.resume()
        assert audit.flush(timeout=60) and audit.pending == 0
        assert _audit_count(keys.engine, "outage-keys") == {200: len(statuses) + 1}


CRASHING_WRITER = """
import sys
from datetime import UTC, datetime
from safecredit.api.audit import AuditWriter
from safecredit.api.keys import make_engine
w = AuditWriter(make_engine(sys.argv[1]), sys.argv[2], interval=3600)  # never moves on its own
for i in range(int(sys.argv[3])):
    assert w.record(at=datetime.now(UTC), consumer="crash", key_id=None, method="GET", route="/v1/feeds",
                    path="/v1/feeds", code=str(i), status=200, version=None, duration_ms=0.1)
print("spooled", flush=True)
sys.stdin.read()  # until killed
"""


def test_a_killed_server_loses_no_spooled_row(tmp_path):
    from safecredit.api.audit import AuditWriter
    from safecredit.api.keys import make_engine

    url, spool = f"sqlite:///{tmp_path / 'service.db'}", tmp_path / "audit-spool"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, url, str(spool), "37"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "spooled"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    engine = make_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log")).scalar() == 0  # nothing reached the database
    writer = AuditWriter(engine, spool)  # the next start imports what the killed process spooled
    assert writer.pending == 37
    writer.start()
    try:
        assert writer.flush()
        with engine.connect() as c:
            codes = sorted(int(x) for (x,) in c.execute(text("SELECT code FROM audit_log WHERE consumer = 'crash'")))
        assert codes == list(range(37))
        assert writer.pending == 0 and len(list(spool.glob("*.jsonl"))) == 1  # only the open segment is left
    finally:
        writer.stop()


def test_spooled_rows_reach_the_database_as_the_model_reads_them(tmp_path, caplog):
    from datetime import UTC, datetime

    from sqlmodel import Session, select

    from safecredit.api.audit import AuditWriter
    from safecredit.api.keys import make_engine
    from safecredit.api.models import AuditLog

    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}")
    writer = AuditWriter(engine, tmp_path / "audit-spool")
    times = [datetime(2026, 12, 4, 11, 2, 3, 456789, tzinfo=UTC), datetime(2026, 12, 4, 11, 2, 4, tzinfo=UTC)]
    for i, at in enumerate(times):
        assert writer.record(
            at=at, consumer="c", key_id="k", method="GET", route="/v1/restrictions/{code}",
            path=f"/v1/restrictions/{i}", code=None, status=200 + i, version="v1", duration_ms=1.25,
        )  # fmt: skip
    os.write(writer._fd, b'{"at": "2026-12-04T11:')  # a row torn by a crash mid-append: skipped, reported
    writer.start()
    try:
        assert writer.flush()
    finally:
        writer.stop()
    with Session(engine) as s:
        rows = s.exec(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(r.at.replace(tzinfo=UTC), r.path, r.status, r.code, r.duration_ms) for r in rows] == [
        (times[0], "/v1/restrictions/0", 200, None, 1.25),
        (times[1], "/v1/restrictions/1", 201, None, 1.25),
    ]
    assert writer.pending == 0 and "not a whole row" in caplog.text
    with engine.connect() as c:  # stored as SQLAlchemy itself stores a DateTime in SQLite
        assert c.execute(text("SELECT min(at) FROM audit_log")).scalar() == "2026-12-04 11:02:03.456789"
