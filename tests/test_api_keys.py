"""API keys and the service commands of operations.md: `keys create|list|revoke|rotate`, `check`,
`serve` — through the installed `safecredit` script, against SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from api_server import copy_home, free_port, running, shared_cluster, wait_until_serving

BIN = Path(sys.executable).parent / "safecredit"


def sc(*args, env=None, timeout=120):
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def last_line(r) -> str:
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def pg_cluster(request):
    return shared_cluster(request.config)


@pytest.fixture(scope="module")
def home(pipeline_run, tmp_path_factory) -> Path:
    return copy_home(pipeline_run["home"], tmp_path_factory.mktemp("keys-home"))


def poll_status(srv, path, key, want: int, timeout: float = 5.0) -> int:
    """Revocations reach a running server within its key cache time (1 s): poll, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        st = srv.get(path, key).status_code
        if st == want or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


# --------------------------------------------------------------------------------- the key store


def test_keys_are_random_shown_once_and_stored_as_sha256(tmp_path):
    from safecredit.api.keys import key_service

    ks = key_service(tmp_path)
    info, key = ks.create("市财政局", "lists:read, restrictions:read")
    info2, key2 = ks.create("市财政局", ["lists:read"])
    assert key != key2 and key.startswith(f"sck_{info['key_id']}_") and len(key) > 50
    assert info["scopes"] == ["lists:read", "restrictions:read"] and info["consumer"] == "市财政局"
    raw = (tmp_path / "service.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("service.db-*"))
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw
    from sqlalchemy import text

    with ks.engine.connect() as c:
        stored = c.execute(text("SELECT key_hash FROM api_keys WHERE key_id = :k"), {"k": info["key_id"]}).scalar()
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    p = ks.verify(key)
    assert p.consumer == "市财政局" and p.scopes == {"lists:read", "restrictions:read"}
    assert (p.rate_per_second, p.burst) == (100.0, 1000)  # exchange.md §2
    for bad in (
        None,
        "",
        key[:-1] + ("A" if key[-1] != "A" else "B"),
        "sck_" + info["key_id"],
        "Bearer x",
        f"sck_{info['key_id']}_" + "x" * 43,
        "x" * 500,
    ):
        assert ks.verify(bad) is None


def test_scopes_and_limits_are_checked(tmp_path):
    from safecredit.api.keys import key_service
    from safecredit.errors import ConfigError

    ks = key_service(tmp_path)
    for scopes in ("lists:write", "", "restrictions:read,admin"):
        with pytest.raises(ConfigError):
            ks.create("x", scopes)
    with pytest.raises(ConfigError):
        ks.create("x", "lists:read", rate_per_second=0)
    info, key = ks.create("slow", "lists:read", rate_per_second=2.5, burst=3)
    assert (info["rate_per_second"], info["burst"]) == (2.5, 3)
    assert ks.verify(key).rate_per_second == 2.5


def test_rotate_revokes_the_old_key_and_keeps_consumer_and_scopes(tmp_path):
    from safecredit.api.keys import key_service
    from safecredit.errors import UserError

    ks = key_service(tmp_path, cache_seconds=0)
    info, key = ks.create("insurer", "premium:read,credit:read")
    new, new_key = ks.rotate(info["key_id"])
    assert new["consumer"] == "insurer" and new["scopes"] == info["scopes"] and new["key_id"] != info["key_id"]
    assert ks.verify(key) is None and ks.verify(new_key).consumer == "insurer"
    old = next(r for r in ks.list() if r["key_id"] == info["key_id"])
    assert old["revoked_at"] and old["replaced_by"] == new["key_id"]
    with pytest.raises(UserError):
        ks.rotate(info["key_id"])
    ks.revoke(new["key_id"])
    assert ks.verify(new_key) is None
    with pytest.raises(UserError):
        ks.revoke("nosuchkey")


def test_a_cached_key_is_verified_again_in_the_background_and_outlives_an_unreadable_database(tmp_path):
    from safecredit.api.keys import key_service

    server = key_service(tmp_path, cache_seconds=3600)  # the server's view
    cli = key_service(tmp_path)  # `keys revoke` in another process: the server's cache is not told
    info, key = cli.create("bank", "restrictions:read")
    other = cli.create("insurer", "restrictions:read")[1]
    assert server.cached(key) == (False, None)  # never seen: the caller verifies (a database read)
    principal = server.verify(key)
    server.verify(other)
    assert server.cached(key) == (True, principal)
    cli.revoke(info["key_id"])
    assert server.cached(key) == (True, principal)  # fresh: answered from the cache
    server.cache_seconds = 1e-9  # expired: answered as before while one refresh runs
    assert server.cached(key) == (True, principal)
    assert server.refresh()  # (what that background refresh does, here in the test's thread)
    server.cache_seconds = 3600
    assert server.cached(key) == (True, None)  # the revocation is seen: 401 without a lookup
    assert server.cached(other)[1].consumer == "insurer"
    # the service database cannot be read (here: its file replaced by an empty one)
    (tmp_path / "service.db").rename(tmp_path / "service.db.away")
    server.engine.dispose()
    server.cache_seconds = 1e-9
    assert server.cached(other)[1].consumer == "insurer"  # still served: no answer waits for the database
    assert not server.refresh() and server.refresh_failures >= 1
    assert server.cached(other)[1].consumer == "insurer"
    assert server.cached(key) == (False, None)  # an invalid key is never answered stale


# --------------------------------------------------------------------------------- the commands


def test_keys_commands_against_a_running_server(home):
    with running(home) as srv:
        r = sc("keys", "create", "--consumer", "市发改委", "--scopes", "lists:read", "--home", str(home))
        assert r.returncode == 0, r.stderr
        key = last_line(r)
        assert key.startswith("sck_") and " " not in key
        assert srv.get("/v1/feeds", key).status_code == 200
        assert srv.get("/v1/blacklist", key).status_code == 200
        assert srv.get("/v1/credit/91331203090000089W", key).status_code == 403
        key_id = key.split("_")[1]

        listed = sc("keys", "list", "--home", str(home))
        assert listed.returncode == 0 and key_id in listed.stdout and "市发改委" in listed.stdout
        assert key not in listed.stdout and key.split("_", 2)[2] not in listed.stdout

        rot = sc("keys", "rotate", key_id, "--home", str(home))
        assert rot.returncode == 0, rot.stderr
        new_key = last_line(rot)
        assert new_key != key and srv.get("/v1/feeds", new_key).status_code == 200
        assert poll_status(srv, "/v1/feeds", key, 401) == 401

        new_id = new_key.split("_")[1]
        rev = sc("keys", "revoke", new_id, "--home", str(home))
        assert rev.returncode == 0 and new_id in rev.stdout
        assert poll_status(srv, "/v1/feeds", new_key, 401) == 401

        rows = {r["key_id"]: r for r in json.loads(sc("keys", "list", "--json", "--home", str(home)).stdout)}
        assert rows[key_id]["replaced_by"] == new_id and rows[key_id]["revoked_at"] and rows[new_id]["revoked_at"]

    bad = sc("keys", "revoke", "0000000000", "--home", str(home))
    assert bad.returncode == 2 and "0000000000" in bad.stderr and "Traceback" not in bad.stderr
    bad = sc("keys", "create", "--consumer", "x", "--scopes", "root", "--home", str(home))
    assert bad.returncode == 2 and "restrictions:read" in bad.stderr and "Traceback" not in bad.stderr


def test_keys_commands_and_service_on_postgresql(home, pg_cluster, tmp_path):
    url = pg_cluster.create_database(f"sc_keys_{uuid.uuid4().hex[:8]}")
    r = sc(
        "keys",
        "create",
        "--consumer",
        "bank",
        "--scopes",
        "restrictions:read",
        "--rate",
        "5",
        "--burst",
        "5",
        "--home",
        str(tmp_path),
        env={"SAFECREDIT_DB_URL": url.replace("+psycopg", "")},
    )
    assert r.returncode == 0, r.stderr
    key = last_line(r)
    listed = sc("keys", "list", "--db-url", url, "--home", str(tmp_path))
    assert "bank" in listed.stdout and "5/5" in listed.stdout
    assert not (tmp_path / "service.db").exists()  # the URL was used, not SQLite
    with running(home, url) as srv:
        codes = [srv.get("/v1/restrictions/91331203090000089W", key).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and 429 in codes[5:]


def cli(*args):
    """The command in-process (click's runner): same code path, no interpreter start-up."""
    from click.testing import CliRunner

    from safecredit.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_check_prints_the_api_body_and_uses_the_documented_exit_codes(home, tmp_path):
    import duckdb

    from safecredit.codes import make_org_code, make_uscc

    idx = json.loads((home / "exports" / "index.json").read_text(encoding="utf-8"))
    path = home / "exports" / "blacklist" / idx["feeds"]["blacklist"]["latest"] / "full.parquet"
    unit = (
        duckdb.connect()
        .execute(
            f"SELECT subject_id FROM read_parquet('{path}') WHERE subject_type='unit' "
            "AND status='listed' ORDER BY entry_id LIMIT 1"
        )
        .fetchone()[0]
    )
    with running(home) as srv:
        key = srv.service.keys.create("checker", ["restrictions:read"])[1]
        api = {
            q: srv.get(f"/v1/restrictions/{unit}{q}", key).json()
            for q in ("", "?matter=government_procurement", "?as_of=2025-01-01")
        }
    r = sc("check", unit, "--home", str(home), "--json")  # the installed script, once
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == api[""]
    r = cli("check", unit, "--home", str(home), "--json", "--matter", "government_procurement")
    assert r.exit_code == 0 and json.loads(r.output) == api["?matter=government_procurement"]
    r = cli("check", unit, "--home", str(home), "--json", "--as-of", "2025-01-01")
    assert r.exit_code == 0 and json.loads(r.output) == api["?as_of=2025-01-01"]
    text = cli("check", unit, "--home", str(home))
    assert text.exit_code == 0 and "RESTRICTED" in text.output and unit in text.output

    unknown = make_uscc("9", "1", "110000", make_org_code("Q7000001"))
    clean = cli("check", unknown, "--home", str(home), "--json")
    assert clean.exit_code == 0
    assert json.loads(clean.output)["restricted"] is False and json.loads(clean.output)["code"] == unknown
    bad = sc("check", unit[:17] + ("0" if unit[17] != "0" else "1"), "--home", str(home))
    assert bad.returncode == 2 and "校验" in bad.stderr and "check" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("check", unit, "--matter", "flying", "--home", str(home)).exit_code == 2
    nothing = sc("check", unit, "--home", str(tmp_path / "empty"))
    assert nothing.returncode == 3 and "Traceback" not in nothing.stderr
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_serve_command_starts_and_never_logs_a_full_id_number(home, tmp_path):
    from datetime import date

    from safecredit.codes import make_id_number

    port = free_port()
    key = sc("keys", "create", "--consumer", "serve-test", "--scopes", "restrictions:read", "--home", str(home))
    key = last_line(key)
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [str(BIN), "serve", "--home", str(home), "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, proc, log)
        pid = make_id_number("330102", date(1975, 6, 15), 123)
        r = requests.get(f"{url}/v1/restrictions/{pid}", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert r.status_code == 200 and r.json()["code"] == "*" * 14 + pid[-4:]
        requests.get(f"{url}/v1/restrictions/{pid}x", headers={"Authorization": f"Bearer {key}"}, timeout=30)
        requests.get(f"{url}/v1/blacklist?since_version={pid}", timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = log.read_text()
    assert "/v1/restrictions/" in out and pid[-4:] in out  # the access log is there, masked
    assert pid not in out and pid[:14] not in out
