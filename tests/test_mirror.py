"""`safecredit mirror`: a chain of versions mirrored incrementally equals the last full file; a tampered
manifest or file is refused (exit 1, local copy kept); a pruned version re-syncs from full; a mirror
killed mid-apply resumes; DuckDB, SQLite and PostgreSQL targets; a directory and the API as sources."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner

from safecredit.cli import main
from safecredit.mirror import mirror
from safecredit.mirror.sources import DirSource
from safecredit.mirror.targets import DuckDBTarget
from safecredit.publish import FEEDS, Publisher

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 23, 2, 0, 0, tzinfo=UTC)


def blacklist(ids, seed=0, renamed=()):
    """Blacklist-shaped rows with the types feeds carry: text, dates, nulls, floats, lists, booleans."""
    rng = random.Random(seed)
    ids = list(ids)
    rng.shuffle(ids)  # input order must not matter
    return pa.table(
        {
            "entry_id": [f"E{i:05d}" for i in ids],
            "subject_type": ["unit" if i % 3 else "person" for i in ids],
            "name": [f"企业{i}号" + ("（更名）" if i in renamed else "") for i in ids],
            "ground": ["A1" if i % 2 else "B3" for i in ids],
            "start_date": [date(2026, 1, 1 + i % 28) for i in ids],
            "end_date": [None if i % 4 else date(2029, 1, 1) for i in ids],
            "risk": [i / 7 for i in ids],
            "penalty_types": [["警告", "罚款"] if i % 2 else [] for i in ids],
            "listed": [i % 5 != 0 for i in ids],
            "fine_count": pa.array([i % 9 or None for i in ids], pa.int64()),
            "status_at": [datetime(2026, 1, 1, 8, i % 60, tzinfo=UTC) for i in ids],
        }
    )


def restrictions(ids, matters=("government_procurement", "public_bidding")):
    return pa.table(
        {
            "entry_id": [f"E{i:05d}" for i in ids for _ in matters],
            "matter": [m for _ in ids for m in matters],
            "restricted_until": [date(2029, 1, 1 + i % 28) for i in ids for _ in matters],
        }
    )


# five versions: adds, deletes, modifications, a composite-key feed
CHAIN = [
    (range(40), (), ("government_procurement",)),
    (range(45), (3, 4), ("government_procurement", "public_bidding")),
    ([i for i in range(50) if i not in (7, 8, 9)], (3,), ("government_procurement", "public_bidding")),
    ([i for i in range(2, 50) if i != 8], (3, 11, 12), ("public_bidding",)),
    ([i for i in range(2, 60) if i not in (8, 20)], (11,), ("public_bidding", "state_land")),
]


def publish(pub: Publisher, n: int):
    ids, renamed, matters = CHAIN[n]
    res = pub.publish(
        {"blacklist": blacklist(ids, seed=n, renamed=renamed), "restrictions": restrictions(ids, matters)},
        as_of=(T0 + timedelta(days=n)).date(),
        policy_version="policy-2026.1",
        generated_at=T0 + timedelta(days=n),
        max_shrink=None,
    )
    assert res.ok, res
    return res.version


@pytest.fixture
def env(tmp_path: Path):
    pub = Publisher(tmp_path / "exports", tmp_path / "keys")
    key = tmp_path / "exchange.pem"
    key.write_text(pub.public_pem(), encoding="ascii")
    return {"pub": pub, "exports": tmp_path / "exports", "key": key, "db": tmp_path / "mirror.duckdb", "tmp": tmp_path}


def run_cli(env, *extra, into=None):
    args = [
        "mirror",
        "--from",
        str(env["exports"]),
        "--into",
        str(into or env["db"]),
        "--public-key",
        str(env["key"]),
        *extra,
    ]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def mirror_dir(env, into=None, feeds=None):
    target = DuckDBTarget(into or env["db"])
    try:
        return {o.feed: o for o in mirror(DirSource(env["exports"]), target, env["key"].read_text(), feeds)}
    finally:
        target.close()


def held(db: Path) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.execute("SELECT feed, version FROM _mirror_state").fetchall())


def local_rows(db: Path, feed: str) -> pa.Table:
    order = ", ".join(FEEDS[feed].id_columns)
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(f"SELECT * FROM {feed} ORDER BY {order}").to_arrow_table()


def full_rows(env, feed: str, version: str) -> pa.Table:
    order = ", ".join(FEEDS[feed].id_columns)
    path = env["exports"] / feed / version / "full.parquet"
    with duckdb.connect() as con:
        return con.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY {order}").to_arrow_table()


def assert_mirrors(env, version: str, db: Path | None = None) -> None:
    db = db or env["db"]
    assert held(db) == {"blacklist": version, "restrictions": version}
    for feed in ("blacklist", "restrictions"):
        assert local_rows(db, feed).equals(full_rows(env, feed, version)), feed


# ---------------------------------------------------------------------------------------------
def test_chain_of_five_versions_mirrored_incrementally_equals_full_of_the_last(env):
    v = [publish(env["pub"], 0)]
    first = mirror_dir(env)
    assert first["blacklist"].resynced_from == v[0] and first["blacklist"].reason == "first mirror"
    assert_mirrors(env, v[0])
    v.append(publish(env["pub"], 1))  # one version at a time …
    out = mirror_dir(env)
    assert out["blacklist"].applied == [v[1]] and out["restrictions"].applied == [v[1]]
    assert out["blacklist"].resynced_from is None
    assert_mirrors(env, v[1])
    v += [publish(env["pub"], n) for n in (2, 3, 4)]  # … and three behind
    out = mirror_dir(env)
    assert out["blacklist"].applied == v[2:] and out["restrictions"].applied == v[2:]
    assert out["blacklist"].resynced_from is None
    assert_mirrors(env, v[4])
    # nothing new: exit 0, "up to date"
    result = run_cli(env)
    assert result.exit_code == 0, result.output
    assert f"blacklist: up to date at {v[4]}" in result.output


def test_without_public_key_it_refuses_to_run(env):
    publish(env["pub"], 0)
    result = CliRunner().invoke(main, ["mirror", "--from", str(env["exports"]), "--into", str(env["db"])])
    assert result.exit_code == 2
    assert "--public-key" in result.output and "公钥" in result.output
    assert not env["db"].exists()


def test_unreachable_source_exits_3(env):
    result = CliRunner().invoke(
        main,
        ["mirror", "--from", str(env["tmp"] / "nowhere"), "--into", str(env["db"]), "--public-key", str(env["key"])],
    )
    assert result.exit_code == 3, result.output
    assert "nowhere" in result.output


def tamper_manifest(env, feed: str, version: str) -> None:
    path = env["exports"] / feed / version / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["row_count"] += 1  # signature kept: it no longer verifies
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_tampered_manifest_is_refused_and_the_local_copy_stays(env):
    v0 = publish(env["pub"], 0)
    mirror_dir(env)
    v1 = publish(env["pub"], 1)
    tamper_manifest(env, "blacklist", v1)
    result = run_cli(env)
    assert result.exit_code == 1, result.output
    assert f"manifest.json of blacklist version {v1} failed verification" in result.output
    assert f"blacklist 的版本 {v1} 的 manifest.json 未通过验证" in result.output
    assert held(env["db"]) == {"blacklist": v0, "restrictions": v1}  # the other feed carried on
    assert local_rows(env["db"], "blacklist").equals(full_rows(env, "blacklist", v0))


def test_manifest_signed_by_another_key_is_refused(env, tmp_path):
    publish(env["pub"], 0)
    other = Publisher(tmp_path / "other-exports", tmp_path / "other-keys")
    env["key"].write_text(other.public_pem(), encoding="ascii")
    result = run_cli(env)
    assert result.exit_code == 1, result.output
    assert "signature does not verify" in result.output
    assert held(env["db"]) == {}


@pytest.mark.parametrize("name", ["delta.jsonl", "full.parquet"])
def test_tampered_file_is_refused_and_the_local_copy_stays(env, name):
    v0 = publish(env["pub"], 0)
    mirror_dir(env)
    v1 = publish(env["pub"], 1)
    if name == "full.parquet":  # a full file is used on a re-sync: force one by emptying the local copy
        with duckdb.connect(str(env["db"])) as con:
            con.execute("DELETE FROM blacklist WHERE entry_id = 'E00001'")
    path = env["exports"] / "blacklist" / v1 / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.unlink()  # the data files are hard links shared with other versions: replace, not edit
    path.write_bytes(bytes(data))
    result = run_cli(env)
    assert result.exit_code == 1, result.output
    assert f"{name} of blacklist version {v1} failed verification" in result.output
    assert "sha256" in result.output
    assert held(env["db"])["blacklist"] == v0
    if name == "delta.jsonl":
        assert local_rows(env["db"], "blacklist").equals(full_rows(env, "blacklist", v0))


def test_pruned_versions_resync_from_the_newest_full(env, tmp_path):
    pub = Publisher(env["exports"], tmp_path / "keys", retention=2)
    v0 = publish(pub, 0)
    mirror_dir(env)
    versions = [publish(pub, n) for n in (1, 2, 3)]
    assert not (env["exports"] / "blacklist" / versions[0]).exists()  # pruned
    out = mirror_dir(env)
    assert out["blacklist"].before == v0
    assert out["blacklist"].resynced_from == versions[-1]
    assert "gap" in out["blacklist"].reason and out["blacklist"].applied == []
    assert_mirrors(env, versions[-1])
    v4 = publish(pub, 4)  # and deltas again afterwards
    assert mirror_dir(env)["blacklist"].applied == [v4]
    assert_mirrors(env, v4)


def test_a_local_copy_that_drifted_resyncs_from_full(env):
    publish(env["pub"], 0)
    mirror_dir(env)
    with duckdb.connect(str(env["db"])) as con:
        con.execute("DELETE FROM blacklist WHERE entry_id IN ('E00003', 'E00004')")  # MOD'ed by version 1
    v1 = publish(env["pub"], 1)
    out = mirror_dir(env)
    assert out["blacklist"].resynced_from == v1 and "does not fit" in out["blacklist"].reason
    assert_mirrors(env, v1)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from safecredit.mirror import targets
    from safecredit.cli import main

    seen = []
    def hook(label):
        seen.append(label)
        if label == os.environ["KILL_AT"] and seen.count(label) == int(os.environ["KILL_NTH"]):
            os.kill(os.getpid(), signal.SIGKILL)
    targets.STEP_HOOK = hook
    sys.argv = ["safecredit", *sys.argv[1:]]
    main()
""")


@pytest.mark.parametrize(
    ("kind", "kill_at"), [("duckdb", "delete"), ("duckdb", "insert"), ("duckdb", "state"), ("sqlite", "insert")]
)
def test_mirror_killed_mid_apply_resumes(env, kind, kill_at):
    into = env["db"] if kind == "duckdb" else env["tmp"] / "mirror.sqlite"
    v = [publish(env["pub"], 0)]
    run_cli(env, into=into)
    v += [publish(env["pub"], n) for n in (1, 2, 3)]
    # killed while applying the second delta of blacklist (restrictions come after it)
    args = ["mirror", "--from", str(env["exports"]), "--into", str(into), "--public-key", str(env["key"])]
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "KILL_AT": kill_at, "KILL_NTH": "2", "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # the first delta committed, the second did not: rows and recorded version agree
    if kind == "duckdb":
        assert held(into) == {"blacklist": v[1], "restrictions": v[0]}
        assert local_rows(into, "blacklist").equals(full_rows(env, "blacklist", v[1]))
    else:
        from safecredit.mirror.targets import open_target

        target = open_target(str(into))
        assert target.held("blacklist").version == v[1] and target.held("restrictions").version == v[0]
        assert sql_rows(target, "blacklist") == expected_rows(env, "blacklist", v[1], "sqlite")
        target.close()
    result = run_cli(env, into=into)
    assert result.exit_code == 0, result.output
    assert f"blacklist: {v[1]} → {v[3]}: 2 delta(s)" in result.output
    assert f"restrictions: {v[0]} → {v[3]}: 3 delta(s)" in result.output
    if kind == "duckdb":
        assert_mirrors(env, v[3])


def test_feeds_option_and_unknown_feed(env):
    v0 = publish(env["pub"], 0)
    result = run_cli(env, "--feeds", "restrictions")
    assert result.exit_code == 0, result.output
    assert held(env["db"]) == {"restrictions": v0}
    result = run_cli(env, "--feeds", "nosuchfeed")
    assert result.exit_code == 2 and "nosuchfeed" in result.output


# ------------------------------------------------------------------------------------ over HTTP
@pytest.fixture
def api(env):
    from api_server import running

    with running(env["tmp"]) as srv:
        yield srv


def test_over_http_with_a_key_chain_pruned_and_tampered(env, api, tmp_path, monkeypatch):
    pub = Publisher(env["exports"], tmp_path / "keys", retention=3)
    key = api.service.keys.create("insurer", ["lists:read"], rate_per_second=10_000, burst=10_000)[1]
    v = [publish(pub, 0)]
    api.wait_for_version(v[0])
    args = ["mirror", "--from", api.url, "--into", str(env["db"]), "--public-key", str(env["key"])]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "SAFECREDIT_MIRROR_KEY" in result.output  # no key
    monkeypatch.setenv("SAFECREDIT_MIRROR_KEY", key)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert_mirrors(env, v[0])
    v += [publish(pub, n) for n in (1, 2)]
    api.wait_for_version(v[-1])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"blacklist: {v[0]} → {v[2]}: 2 delta(s)" in result.output
    assert_mirrors(env, v[2])
    v += [publish(pub, n) for n in (3, 4)]  # v[1] and v[2] pruned: 410 → re-sync from full
    assert api.get(f"/v1/feeds/blacklist/{v[1]}/delta.jsonl", key).status_code == 410
    tamper_manifest(env, "restrictions", v[4])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert f"manifest.json of restrictions version {v[4]} failed verification" in result.output
    assert held(env["db"]) == {"blacklist": v[4], "restrictions": v[3]}  # v[3]'s delta applied, v[4] refused
    assert local_rows(env["db"], "restrictions").equals(full_rows(env, "restrictions", v[3]))
    # a key whose scopes cover none of the feeds, or not the one asked for, is bad usage
    credit_only = api.service.keys.create("bank", ["credit:read"], rate_per_second=10_000, burst=10_000)[1]
    for extra in ([], ["--feeds", "blacklist"]):
        result = CliRunner().invoke(main, [*args, "--key", credit_only, *extra])
        assert result.exit_code == 2, result.output
        assert "403" in result.output or "none of the feeds" in result.output
    # a bad key is bad usage, an unreachable API exit 3
    result = CliRunner().invoke(main, [*args, "--key", "sk_nope"])
    assert result.exit_code == 2 and "401" in result.output
    result = CliRunner().invoke(
        main, ["mirror", "--from", "http://127.0.0.1:9", "--into", str(env["db"]), "--public-key", str(env["key"])]
    )
    assert result.exit_code == 3, result.output


# ------------------------------------------------------------------------------ SQLite, PostgreSQL
def sql_rows(target, feed: str) -> list[tuple]:
    order = ", ".join(FEEDS[feed].id_columns)
    cur = target.con.cursor()
    cur.execute(f"SELECT * FROM {feed} ORDER BY {order}")
    out = [tuple(r) for r in cur.fetchall()]
    cur.close()
    return out


def expected_rows(env, feed: str, version: str, kind: str) -> list[tuple]:
    from safecredit.mirror.deltas import read_full
    from safecredit.mirror.sqltargets import rows

    table, schema = read_full(env["exports"] / feed / version / "full.parquet")
    table = table.sort_by([(c, "ascending") for c in FEEDS[feed].id_columns])
    if kind == "postgresql":  # psycopg answers jsonb as Python lists, the rest as Arrow's Python values
        return [tuple(r.values()) for r in table.to_pylist()]
    return [r for batch in rows(table, schema, kind) for r in batch]


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_into(request, env):
    if request.param == "sqlite":
        return str(env["tmp"] / "mirror.sqlite")
    from api_server import shared_cluster

    return shared_cluster(request.config).create_database(f"mirror_{os.getpid()}_{random.randrange(10**9)}")


def test_chain_into_sqlite_and_postgresql(env, sql_into):
    from safecredit.mirror.targets import open_target

    def run():
        target = open_target(sql_into)
        try:
            return {o.feed: o for o in mirror(DirSource(env["exports"]), target, env["key"].read_text())}
        finally:
            target.close()

    def check(version):
        target = open_target(sql_into)
        try:
            assert target.held("blacklist").version == version and target.held("restrictions").version == version
            for feed in ("blacklist", "restrictions"):
                assert sql_rows(target, feed) == expected_rows(env, feed, version, target.kind), feed
        finally:
            target.close()

    v = [publish(env["pub"], 0)]
    assert run()["blacklist"].resynced_from == v[0]
    check(v[0])
    v += [publish(env["pub"], n) for n in (1, 2, 3, 4)]
    out = run()
    assert out["blacklist"].applied == v[1:] and out["restrictions"].applied == v[1:]
    check(v[4])
    # a drifted local copy re-syncs; the CLI takes the same target string
    target = open_target(sql_into)
    cur = target.con.cursor()
    cur.execute("DELETE FROM blacklist WHERE entry_id = 'E00011'")  # MOD'ed by the next version
    target.con.commit()
    target.close()
    v.append(publish(env["pub"], 1))  # version 1's content again: E00011 renamed back
    result = run_cli(env, into=sql_into)
    assert result.exit_code == 0, result.output
    assert f"blacklist: {v[4]} → {v[5]}: full {v[5]} (local copy does not fit the delta" in result.output
    check(v[5])


def test_a_new_column_reloads_that_version_from_full_then_deltas_continue(env):
    pub = env["pub"]

    def put(n, extra):
        table = blacklist(CHAIN[n][0], seed=n, renamed=CHAIN[n][1])
        if extra:
            table = table.append_column("repair_date", pa.array([None] * table.num_rows, pa.date32()))
        return pub.publish(
            {"blacklist": table},
            as_of=(T0 + timedelta(days=n)).date(),
            policy_version="p",
            generated_at=T0 + timedelta(days=n),
            max_shrink=None,
        ).version

    put(0, False)
    mirror_dir(env)
    v1, v2 = put(1, True), put(2, True)
    out = mirror_dir(env)["blacklist"]
    assert (out.resynced_from, out.reason, out.applied) == (v1, "columns changed", [v2])
    assert "repair_date" in local_rows(env["db"], "blacklist").column_names
    assert local_rows(env["db"], "blacklist").equals(full_rows(env, "blacklist", v2))


def test_a_source_that_went_back_is_followed(env, tmp_path):
    import shutil

    v0 = publish(env["pub"], 0)
    shutil.copytree(env["exports"], tmp_path / "restored-exports")  # e.g. a share restored from a backup
    publish(env["pub"], 1)
    mirror_dir(env)
    env["exports"] = tmp_path / "restored-exports"
    out = mirror_dir(env)["blacklist"]
    assert out.resynced_from == v0 and "older than" in out.reason
    assert_mirrors(env, v0)
