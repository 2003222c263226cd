"""The holes of issue 11, each probed the way the security review did: over real HTTP, against a
real uvicorn server on loopback (tests/api_server.py), SQLite service database unless said.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import test_api
from api_server import SCOPES, copy_home, free_port, running, wait_until_serving

data = test_api.data  # the fixture, resolved here with this module's `home`
pg_cluster = test_api.pg_cluster  # the session's PostgreSQL (started only when a test asks for it)
is_problem = test_api.is_problem

# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def home(pipeline_run, tmp_path_factory) -> Path:
    return copy_home(pipeline_run["home"], tmp_path_factory.mktemp("sec-home"))


@pytest.fixture(scope="module")
def server(home):
    with running(home) as srv:
        yield srv


def make_key(server, name: str, scopes, rate: float = 10_000, burst: int = 10_000) -> str:
    return server.service.keys.create(name, list(scopes), rate_per_second=rate, burst=burst)[1]


def access_lines(caplog, n: int) -> list[str]:
    """The service's access-log lines (written once the answer is sent: poll, bounded)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(r.name == "safecredit.access" for r in caplog.records) < n:
        time.sleep(0.02)
    return [r.getMessage() for r in caplog.records if r.name == "safecredit.access"]


def audit_rows(server, where: str = "1=1", until=lambda rows: True) -> list[dict]:
    """Audit rows (oldest first); a row is queued only after its answer was sent, so poll (bounded)
    until `until(rows)` holds."""
    from sqlalchemy import text

    deadline = time.monotonic() + 10
    while True:
        assert server.service.audit.flush()
        with server.service.keys.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(text(f"SELECT * FROM audit_log WHERE {where} ORDER BY id"))]
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def normalised(text: str) -> str:
    """What a reader can rebuild from a line: decoded twice, half-width, separators dropped."""
    text = unicodedata.normalize("NFKC", unquote(unquote(text)))
    return re.sub(r"[\s\-_.+\u2010-\u2015\u2212]", "", text).upper()


# --------------------------------------------------------------------------------- 1. scopes


def test_explain_leaves_out_the_parts_the_keys_scopes_do_not_cover(server, data):
    feeds = data["index"]["feeds"]
    if "credit_scores" not in feeds or "premium_factors" not in feeds:
        pytest.skip("credit_scores / premium_factors not published")
    lists = make_key(server, "explain-lists", ["lists:read"])
    unit = data["unit"]  # listed (so lists:read has something to explain) and scored
    assert server.get(f"/v1/credit/{unit}", lists).status_code == 403
    assert server.get(f"/v1/premium-factors/{unit}", lists).status_code == 403
    body = server.get(f"/v1/explain/{unit}", lists).json()
    assert body["kind"] == "subject" and body["list_entries"]
    assert "credit_score" not in body and "premium_factor" not in body

    credit = make_key(server, "explain-credit", ["lists:read", "credit:read"])
    body = server.get(f"/v1/explain/{unit}", credit).json()
    assert "premium_factor" not in body
    every = make_key(server, "explain-all", SCOPES)
    full = server.get(f"/v1/explain/{unit}", every).json()
    assert "credit_score" in full and "premium_factor" in full
    assert body["credit_score"] == full["credit_score"]
    if server.get(f"/v1/credit/{unit}", every).status_code == 200:
        assert full["credit_score"]["uscc"] == unit and "score" in full["credit_score"]


# --------------------------------------------------------------------------------- 2. ID numbers in logs


def id_forms(pid: str) -> list[str]:
    fw = "".join(chr(ord(c) + 0xFEE0) for c in pid)
    return [
        f"{pid[:6]} {pid[6:14]} {pid[14:]}",
        f"{pid[:6]}-{pid[6:14]}-{pid[14:]}",
        fw,
        "".join(f"%{ord(c):02X}" for c in pid),
        "".join(f"%25{ord(c):02X}" for c in pid),
        quote(fw),
        pid.lower(),
    ]


def test_spaced_hyphenated_full_width_and_percent_encoded_id_numbers_are_masked_in_log_and_audit(server, data, caplog):
    pid = data["person"]
    key = make_key(server, "masking-probe", SCOPES)
    paths = []
    for form in id_forms(pid):
        q = form if "%" in form else quote(form)
        paths += [
            f"/v1/explain/{q}",
            f"/v1/blacklist?since_version={q}",
            f"/v1/restrictions/{q}",
            f"/v1/feeds/blacklist/{q}/full.csv",
        ]
    with caplog.at_level(logging.INFO, logger="safecredit.access"):
        for p in paths:
            server.get(p, key)
            server.get(p)  # without a key: logged and audited too
        lines = access_lines(caplog, 2 * len(paths))
    assert len(lines) >= 2 * len(paths)
    rows = audit_rows(server, until=lambda rs: len(rs) >= 2 * len(paths))
    dump = json.dumps([{k: str(v) for k, v in r.items()} for r in rows], ensure_ascii=False)
    for line in [*lines, dump]:
        assert pid[:14] not in normalised(line), line[:300]
    assert any(pid[-4:] in line and "/v1/explain/" in line for line in lines)


def test_masking_keeps_units_and_entry_ids_readable():
    from safecredit.api.masking import mask_ids_in_text

    for keep in (
        "91331203090000089W",
        "E0123456789abcdef",
        "/v1/feeds/blacklist/20261123T020000Z-3f9a1c/full.csv",
        '2026-12-03 13:58:42,123 127.0.0.1:5555 "GET /v1/feeds" 200 1.2ms key=0123456789',
    ):
        assert mask_ids_in_text(keep) == keep


# --------------------------------------------------------------------------------- 3. enumeration


def test_a_batch_is_charged_one_token_per_code(server, data):
    key = make_key(server, "enumerator", ["restrictions:read"], rate=1, burst=20)
    codes = [data["unit"]] * 1000
    r = server.post("/v1/restrictions/batch", key, json={"codes": codes})
    assert r.status_code == 200, r.text[:300]  # admitted: the bucket held min(1000, burst) tokens
    after = server.get(f"/v1/restrictions/{data['unit']}", key)
    body = is_problem(after, 429)
    assert int(after.headers["retry-after"]) >= 900  # the 980 tokens of debt, at 1/s
    assert "速率" in body["detail"] or "rate" in body["detail"]
    again = server.post("/v1/restrictions/batch", key, json={"codes": codes[:5]})
    is_problem(again, 429)

    small = make_key(server, "small-batches", ["restrictions:read"], rate=1, burst=10)
    assert server.post("/v1/restrictions/batch", small, json={"codes": [data["unit"]] * 10}).status_code == 200
    is_problem(server.post("/v1/restrictions/lookup", small, json={"code": data["unit"]}), 429)


def test_person_codes_count_against_a_daily_quota(home, data):
    from datetime import date

    from safecredit.codes import make_id_number

    persons = [make_id_number("330102", date(1970, 1, 1 + i % 28), i) for i in range(40)]
    with running(home, person_quota=50) as server:
        key = make_key(server, "quota-probe", ["restrictions:read"])
        assert server.post("/v1/restrictions/batch", key, json={"codes": persons}).status_code == 200
        body = is_problem(server.post("/v1/restrictions/batch", key, json={"codes": persons[:20]}), 429)
        assert "quota" in body["detail"] and "配额" in body["detail"]
        assert server.get(f"/v1/restrictions/{data['unit']}", key).status_code == 200  # units are not counted
        for p in persons[:10]:
            assert server.post("/v1/restrictions/lookup", key, json={"code": p}).status_code == 200
        is_problem(server.post("/v1/restrictions/lookup", key, json={"code": persons[0]}), 429)


def test_the_person_quota_is_one_for_every_server_of_the_exchange(home):
    from datetime import date

    from safecredit.codes import make_id_number

    persons = [make_id_number("330103", date(1971, 2, 1 + i % 28), i) for i in range(40)]
    with running(home, person_quota=50) as one, running(home, person_quota=50) as other:
        key = make_key(one, "quota-shared", ["restrictions:read"])
        assert one.post("/v1/restrictions/batch", key, json={"codes": persons}).status_code == 200
        # the other server counts from the same 40 (not from its own 0)
        body = is_problem(other.post("/v1/restrictions/batch", key, json={"codes": persons[:20]}), 429)
        assert "quota" in body["detail"] and "配额" in body["detail"]
        assert other.post("/v1/restrictions/batch", key, json={"codes": persons[:10]}).status_code == 200
        is_problem(one.post("/v1/restrictions/lookup", key, json={"code": persons[0]}), 429)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_person_codes_are_spent_from_memory_and_the_quota_holds_across_restarts(home, db, request, tmp_path):
    """Far from its quota a key's person codes cost no database statement (a lease claimed once);
    a clean stop gives the unspent lease back, and the quota still refuses past its limit, on a
    restarted server too."""
    import uuid
    from datetime import date

    from sqlalchemy import event, text

    from safecredit.codes import is_valid_uscc, make_id_number

    if db == "sqlite":
        url = f"sqlite:///{tmp_path / 'quota.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").create_database(f"sc_quota_{uuid.uuid4().hex[:8]}")
    made = (make_id_number("330104", date(1972, 3, 1 + i % 28), i) for i in range(1000))
    persons = [c for c in made if not is_valid_uscc(c)][:600]
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "person_quota_use" in statement:
            statements.append(statement)

    with running(home, url, person_quota=600) as one:
        key = make_key(one, "quota-lease", ["restrictions:read"])
        engine = one.service.quota.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert one.post("/v1/restrictions/lookup", key, json={"code": persons[0]}).status_code == 200
            claimed = len(statements)
            assert claimed >= 1  # the first call claims in the database
            for p in persons[1:11]:
                assert one.post("/v1/restrictions/lookup", key, json={"code": p}).status_code == 200
            assert len(statements) == claimed, statements[claimed:]  # the next ten: from memory
        finally:
            event.remove(engine, "before_cursor_execute", count)

    def used() -> int:
        from sqlalchemy import create_engine

        eng = create_engine(url)
        try:
            with eng.connect() as c:
                return c.execute(text("SELECT used FROM person_quota_use")).scalar()
        finally:
            eng.dispose()

    assert used() == 11  # the stop gave the unspent lease back

    with running(home, url, person_quota=600) as two:
        assert two.post("/v1/restrictions/batch", key, json={"codes": persons[11:]}).status_code == 200
        body = is_problem(two.post("/v1/restrictions/lookup", key, json={"code": persons[0]}), 429)
        assert "quota" in body["detail"] and "配额" in body["detail"]
    assert used() == 600
    with running(home, url, person_quota=600) as three:
        is_problem(three.post("/v1/restrictions/lookup", key, json={"code": persons[1]}), 429)


# --------------------------------------------------------------------------------- 4. floods and sizes


def test_calls_without_a_valid_key_are_limited_per_address_before_any_key_lookup(home):
    # a slow refill: the probe must not depend on how fast a loaded machine sends 12 requests
    with running(home, anon_rate=0.01, anon_burst=5, auth_cache_seconds=120) as server:
        good = make_key(server, "not-limited-by-address", ["lists:read"])
        assert server.get("/v1/feeds", good).status_code == 200
        ks = server.service.keys
        lookups = []
        real = ks._lookup
        ks._lookup = lambda *a: lookups.append(a) or real(*a)  # count the database reads
        statuses = [server.get("/v1/feeds", f"sck_{i:010d}_{'x' * 43}").status_code for i in range(12)]
        assert statuses[:4] == [401] * 4 and set(statuses[5:]) == {429}, statuses
        assert len(lookups) == 4  # the refused ones never reached the database
        body = is_problem(server.get("/v1/feeds"), 429)
        assert "address" in body["detail"] and "地址" in body["detail"]
        assert server.get("/v1/feeds", good).status_code == 200  # a known valid key is not held back


def test_the_audit_spool_is_bounded(tmp_path):
    from datetime import UTC, datetime

    from safecredit.api.audit import AuditWriter
    from safecredit.api.keys import make_engine

    w = AuditWriter(make_engine(f"sqlite:///{tmp_path / 'a.db'}"), tmp_path / "spool", max_spooled=10)  # not started
    row = {"at": datetime.now(UTC), "method": "GET", "route": "/v1/feeds", "path": "/v1/feeds", "status": 401}
    accepted = [w.record(**row) for _ in range(25)]
    assert accepted.count(True) == 10 and w.dropped == 15 and not w.accepting()


def test_long_urls_are_logged_cut_and_bodies_are_limited(server, data, caplog):
    import socket

    key = make_key(server, "sizes", SCOPES)
    with caplog.at_level(logging.INFO, logger="safecredit.access"):
        long_path = "/v1/explain/" + "A" * 60_000
        r = server.get(long_path, key)
        assert r.status_code in (404, 414, 422)
        lines = access_lines(caplog, 1)
    assert lines and max(len(x) for x in lines) < 1000

    # a 30 MB body is refused from its Content-Length, before a byte of it is read
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(
            f"POST /v1/restrictions/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f'Content-Type: application/json\r\nContent-Length: 30000000\r\n\r\n{{"codes": ['.encode()
        )
        head = s.recv(65536).decode("utf-8", "replace")
    assert head.startswith("HTTP/1.1 413"), head[:200]
    assert "application/problem+json" in head and "KiB" in head

    # a chunked body (no length) is cut off once it passes the limit
    def chunks():
        yield b'{"codes": ["'
        for _ in range(200):
            yield b"1" * 10_000
        yield b'"]}'

    r = server.post("/v1/restrictions/batch", key, data=chunks(), headers={"Content-Type": "application/json"})
    body = is_problem(r, 413)
    assert "KiB" in body["detail"]
    # one code of a batch is as long as a lookup's at most
    is_problem(server.post("/v1/restrictions/batch", key, json={"codes": [data["unit"], "9" * 5000]}), 422)


# --------------------------------------------------------------------------------- 5. forged lines, cursors, cache


def test_a_control_character_in_the_path_cannot_forge_a_log_line(server, caplog):
    key = make_key(server, "forger", ["lists:read"])
    forged = '%0A127.0.0.1:1 "GET /v1/forged" 200 0.1ms key=admin'
    with caplog.at_level(logging.INFO, logger="safecredit.access"):
        server.get("/v1/feeds" + forged.replace(" ", "%20").replace('"', "%22"), key)
        lines = access_lines(caplog, 1)
    assert lines and all("\n" not in x and "\r" not in x for x in lines)
    assert any("\\n127.0.0.1:1" in x for x in lines)


def test_a_bug_in_the_hot_route_is_a_500_problem_audited_with_its_route(server, data, monkeypatch):
    """`GET /v1/restrictions/{code}` skips Starlette's error middleware (fastpath.HotRouteFirst): an
    exception there is still a 500 problem without a traceback or the number in it, audited with
    the route it tried, with the headers of any answer; the next call is answered."""
    from safecredit.api.answer_index import AnswerIndex

    key = make_key(server, "hot-bug", ["restrictions:read"])
    number = data["person"]

    def broken(self, *args, **kw):
        raise RuntimeError(f"lookup failed for {number}")

    monkeypatch.setattr(AnswerIndex, "prepared", broken)
    r = server.get(f"/v1/restrictions/{data['unit']}", key)
    body = is_problem(r, 500)
    assert number not in r.text and number[-8:] not in r.text
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    rows = audit_rows(server, "status = 500", until=lambda rows: rows)
    assert rows and rows[-1]["route"] == "/v1/restrictions/{code}" and rows[-1]["code"] == data["unit"]
    assert body["instance"].startswith("/v1/restrictions/")
    monkeypatch.undo()
    assert server.get(f"/v1/restrictions/{data['unit']}", key).status_code == 200


def test_a_deeply_nested_cursor_is_an_invalid_cursor_not_a_500(server):
    import base64

    key = make_key(server, "nester", ["lists:read"])
    cursor = base64.urlsafe_b64encode(b"[" * 1490).decode().rstrip("=")
    assert len(cursor) <= 2000
    body = is_problem(server.get("/v1/blacklist", key, params={"cursor": cursor}), 400)
    assert "cursor" in body["detail"]


def test_the_delta_cache_keeps_only_diffs_to_the_served_version(pipeline_run, tmp_path, data):
    import base64

    from safecredit.api.app import MAX_CACHED_DIFFS
    from safecredit.publish import Publisher

    h = copy_home(pipeline_run["home"], tmp_path / "delta-home")
    versions = [data["version"]]
    for _ in range(3):
        versions.append(Publisher(h / "exports", h / "keys").restore(versions[0]).version)
    with running(h, poll_interval=0.1) as server:
        server.wait_for_version(versions[-1])
        key = make_key(server, "cache-filler", ["lists:read"])
        for since in versions:
            for v in versions:  # a forged cursor names any version as its own
                cur = (
                    base64.urlsafe_b64encode(
                        json.dumps({"f": "blacklist", "v": v, "s": since, "k": "x"}, separators=(",", ":")).encode()
                    )
                    .decode()
                    .rstrip("=")
                )
                r = server.get("/v1/blacklist", key, params={"since_version": since, "cursor": cur})
                assert r.status_code == 200, r.text[:200]
        with server.service.snapshots.acquire() as snap:
            diffs = [k for k in snap.cache if isinstance(k, tuple) and k[0] == "diff"]
    assert diffs and len(diffs) <= MAX_CACHED_DIFFS
    assert {k[3] for k in diffs} == {versions[-1]}


# --------------------------------------------------------------------------------- 6. the audit itself


def test_a_failed_audit_write_keeps_the_rows_in_the_spool_and_a_full_spool_refuses(home):
    from sqlalchemy import text

    with running(home, audit_max_spooled=10) as server:
        key = make_key(server, "audited", ["lists:read"])
        assert server.get("/v1/feeds", key).status_code == 200
        assert audit_rows(server, "consumer = 'audited'", until=bool)  # written before the table goes away
        engine = server.service.keys.engine
        with engine.begin() as c:
            c.execute(text("ALTER TABLE audit_log RENAME TO audit_log_away"))
        try:
            statuses = [server.get(f"/v1/feeds?probe={i}", key).status_code for i in range(12)]
            # answered while their rows wait in the spool (9 = 90% of it), then refused: never unaudited
            assert statuses == [200] * 9 + [503] * 3, statuses
            body = is_problem(server.get("/v1/feeds", key), 503)
            assert "audit" in body["detail"] and "审计" in body["detail"]
            assert not server.service.audit.flush(timeout=0.5)
        finally:
            with engine.begin() as c:
                c.execute(text("ALTER TABLE audit_log_away RENAME TO audit_log"))
        assert server.service.audit.flush(timeout=30)
        assert server.get("/v1/feeds", key).status_code == 200
        rows = audit_rows(server, "consumer = 'audited'", until=lambda rs: len(rs) >= 12)
    paths = [r["path"] for r in rows]
    assert all(f"/v1/feeds?probe={i}" in paths for i in range(10))  # 9 answered, 1 refused: none lost
    assert [r["status"] for r in rows].count(503) == 1  # the spool's last row; later refusals were counted


def test_refused_calls_are_audited_with_their_route_and_explained_entries_by_id(server, data):
    server.get(f"/v1/restrictions/{data['unit']}")  # 401
    server.get("/v1/feeds", "sck_0000000000_" + "y" * 43)  # 401
    lists = make_key(server, "entry-probe", ["lists:read"])
    assert server.get(f"/v1/explain/{data['entry']}", lists).status_code == 200
    want = {"/v1/restrictions/{code}", "/v1/feeds"}
    anon = audit_rows(server, "status = 401", until=lambda rs: want <= {r["route"] for r in rs})
    routes = {r["route"] for r in anon}
    assert want <= routes and "(unmatched)" not in routes
    explained = audit_rows(server, "consumer = 'entry-probe'", until=bool)
    assert explained[-1]["code"] == data["entry"] and explained[-1]["route"] == "/v1/explain/{entry_id}"


# --------------------------------------------------------------------------------- 7. headers, files, deployment


def test_answers_are_not_cached_and_files_are_not_sniffed(server, data):
    key = make_key(server, "headers", SCOPES)
    r = server.post("/v1/restrictions/lookup", key, json={"code": data["person"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert server.get(f"/v1/restrictions/{data['unit']}", key).headers["cache-control"] == "no-store"
    assert server.get(f"/v1/explain/{data['entry']}", key).headers["cache-control"] == "no-store"
    f = server.get(f"/v1/feeds/blacklist/{data['version']}/full.csv", key)
    assert f.status_code == 200 and f.headers["x-content-type-options"] == "nosniff"
    assert server.get("/report", key).headers["x-content-type-options"] == "nosniff"
    assert server.get("/v1/feeds").headers["cache-control"] == "no-store"  # errors too


def test_service_database_and_signing_key_are_owner_only(pipeline_run, tmp_path):
    import stat

    from safecredit.publish import SigningKey
    from safecredit.publish.errors import VerificationError

    assert stat.S_IMODE((pipeline_run["home"] / "keys").stat().st_mode) == 0o700  # as the pipeline made it
    h = copy_home(pipeline_run["home"], tmp_path / "perm-home")
    with running(h) as server:
        make_key(server, "perm", ["lists:read"])
    assert stat.S_IMODE((h / "service.db").stat().st_mode) == 0o600
    loose = tmp_path / "loose-keys"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    SigningKey.load_or_create(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    pem = next(loose.glob("*.pem"))
    pem.chmod(0o640)
    with pytest.raises(VerificationError, match="chmod 600"):
        SigningKey.load(pem)


def test_under_a_root_path_the_api_is_guarded_and_audited(home, data):
    with running(home, uvicorn_kw={"root_path": "/exchange"}) as server:
        key = make_key(server, "behind-proxy", ["lists:read"])
        is_problem(server.get("/v1/feeds?probe=root-path"), 401)
        assert server.get("/v1/feeds?probe=root-path", key).status_code == 200
        rows = audit_rows(
            server, "route = '/v1/feeds' AND path LIKE '%probe=root-path%'", until=lambda rs: len(rs) >= 2
        )
    assert [r["status"] for r in rows] == [401, 200]
    assert rows[-1]["consumer"] == "behind-proxy"


def test_uvicorn_factory_as_documented_starts_and_masks_its_own_access_log(home, tmp_path):
    import os
    import subprocess
    import sys
    from datetime import date

    import requests

    from safecredit.codes import make_id_number

    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "SAFECREDIT_HOME": str(home)}
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "safecredit.api.app:create_app", "--factory", "--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    pid = make_id_number("330102", date(1975, 6, 15), 123)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc, log)
        requests.get(f"{url}/v1/restrictions/{pid}", timeout=30)
        requests.get(f"{url}/v1/explain/{pid[:6]}%20{pid[6:]}", timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = log.read_text()
    assert "/v1/restrictions/" in out  # uvicorn's access log is there ...
    assert pid[:14] not in normalised(out)  # ... masked


def test_a_version_id_with_a_trailing_newline_is_not_a_version_id(server):
    from safecredit.publish import is_version_id

    assert is_version_id("20261123T020000Z-3f9a1c") and not is_version_id("20261123T020000Z-3f9a1c\n")
    key = make_key(server, "newline", ["lists:read"])
    is_problem(server.get("/v1/blacklist", key, params={"since_version": "20261123T020000Z-3f9a1c\n"}), 422)
