"""Helpers for the API tests: a real uvicorn server on loopback, keys, a home copy, PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

SCOPES = ("restrictions:read", "lists:read", "credit:read", "premium:read")


class ApiServer:
    """uvicorn serving `create_app(home, db_url)` in a thread, on a socket bound to a free port."""

    def __init__(self, home: Path, db_url: str | None = None, *, uvicorn_kw: dict | None = None, **app_kw):
        from safecredit.api import create_app

        self.home = Path(home)
        self.uvicorn_kw = uvicorn_kw or {}  # e.g. root_path: behind a proxy that strips that prefix
        self.app = create_app(home, db_url, **app_kw)
        self.service = self.app.state.service
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()

    def start(self, timeout: float = 60.0) -> ApiServer:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            access_log=False,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
            **self.uvicorn_kw,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name=f"uvicorn-{self.port}", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded readiness poll, not a blind sleep
            if not self.thread.is_alive():
                raise RuntimeError("the API server thread died during start-up")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the API server on {self.url} did not answer /healthz within {timeout} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.http.close()
        self.sock.close()

    def get(self, path: str, key: str | None = None, **kw) -> requests.Response:
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **kw.pop("headers", {})}
        return self.http.get(self.url + path, headers=headers, timeout=60, **kw)

    def post(self, path: str, key: str | None = None, **kw) -> requests.Response:
        headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **kw.pop("headers", {})}
        return self.http.post(self.url + path, headers=headers, timeout=60, **kw)

    def wait_for_version(self, version: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/healthz").json().get("version") == version:
                return
            time.sleep(0.05)
        raise TimeoutError(f"the server did not switch to {version} within {timeout} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Poll `url`/healthz (bounded) until a server process started by a test answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{url} did not answer /healthz within {timeout} s"
        time.sleep(0.1)


@contextmanager
def running(home: Path, db_url: str | None = None, **kw) -> Iterator[ApiServer]:
    srv = ApiServer(home, db_url, **kw).start()
    try:
        yield srv
    finally:
        srv.stop()


def copy_home(src: Path, dst: Path) -> Path:
    """A private home for a server: the published exports and keys (never the warehouse)."""
    dst.mkdir(parents=True, exist_ok=True)
    for part in ("exports", "keys"):
        if (src / part).exists():
            shutil.copytree(src / part, dst / part, copy_function=shutil.copy2, dirs_exist_ok=True)
    return dst


def codes_to_ask(pipeline_run: dict, home: Path) -> dict:
    """Codes to ask about, from the published feeds of `home` (a copy of the session's run) and
    person ID numbers from a copy of its warehouse (shared by the API and check page tests)."""
    import duckdb

    from safecredit.codes import is_valid_uscc

    exports = home / "exports"
    index = json.loads((exports / "index.json").read_text(encoding="utf-8"))
    version = index["version"]
    con = duckdb.connect()

    def q(feed, sql):
        path = exports / feed / index["feeds"][feed]["latest"] / "full.parquet"
        return con.execute(sql.replace("{t}", f"read_parquet('{path}')")).fetchall()

    out: dict = {"version": version, "index": index}
    out["unit"] = q(
        "blacklist",
        "SELECT subject_id FROM {t} WHERE subject_type='unit' AND status='listed' ORDER BY entry_id LIMIT 1",
    )[0][0]
    rep = q(
        "blacklist",
        "SELECT any_value(subject_id), any_value(start_date), any_value(end_date), "
        "any_value(decision_date) FROM {t} WHERE subject_type='unit' GROUP BY subject_id "
        "HAVING count(*) = 1 AND bool_and(status IN ('repaired', 'expired')) ORDER BY 1 LIMIT 1",
    )
    out["lifted"] = rep[0] if rep else None
    out["entry"] = q("blacklist", "SELECT entry_id FROM {t} ORDER BY entry_id LIMIT 1")[0][0]
    out["row_count"] = index["feeds"]["blacklist"]["row_count"]
    listed_units = {r[0] for r in q("blacklist", "SELECT subject_id FROM {t} WHERE subject_type='unit'")}
    out["clean_unit"] = None
    if "credit_scores" in index["feeds"]:
        for (u,) in q("credit_scores", "SELECT uscc FROM {t} ORDER BY uscc LIMIT 200"):
            if u not in listed_units:
                out["clean_unit"] = u
                break
        out["scored_unit"] = q("credit_scores", "SELECT uscc FROM {t} ORDER BY uscc LIMIT 1")[0][0]
    out["some_units"] = sorted(listed_units)[:15]
    if "intermediary_ratings" in index["feeds"]:
        out["agency"] = q("intermediary_ratings", "SELECT uscc FROM {t} ORDER BY uscc LIMIT 1")[0][0]
    wh = home.parent / f"{home.name}-warehouse.duckdb"  # a copy: never touch the pipeline's file
    shutil.copyfile(pipeline_run["home"] / "warehouse" / "warehouse.duckdb", wh)
    w = duckdb.connect(str(wh), read_only=True)
    try:
        persons = w.execute(
            "SELECT subject_code_full FROM rules.blacklist WHERE subject_type='person' AND status='listed' "
            "AND length(subject_code_full) = 18 ORDER BY entry_id"
        ).fetchall()
        # about 1 in 31 ID numbers is also a valid USCC and is (rightly) answered 409 without
        # subject_type: the tests about persons need one that is only an ID number
        out["person"] = next(c for (c,) in persons if not is_valid_uscc(c))
    finally:
        w.close()
    con.close()
    return out


# ------------------------------------------------------------------------------- PostgreSQL


def find_pg_bin() -> Path | None:
    """Directory of initdb/pg_ctl (Debian: /usr/lib/postgresql/<v>/bin), or None."""
    cands = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent.parent.name, reverse=True)
    if cands:
        return cands[0].parent
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    return (
        [runuser, "-u", "postgres", "--", *cmd] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]
    )


class PostgresCluster:
    """A throwaway cluster: initdb on a temp dir, pg_ctl start on a free loopback port, stop + delete."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="sc-pg-"))
        self.data = self.dir / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)

    def _run(self, *args: str, timeout: float = 120) -> None:
        r = subprocess.run(
            _as_postgres([str(self.bindir / args[0]), *args[1:]]),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
        )
        if r.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stderr[-2000:]}")

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale")
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again, after `pause`) on the same port and data."""
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "-t", "60", "start")

    def pause(self) -> None:
        """Stop the server, keeping its data (a database outage); `resume` brings it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


_CLUSTER: dict = {}


def shared_cluster(config) -> PostgresCluster:
    """One throwaway PostgreSQL cluster per test session (any module may ask), stopped at its end.
    Skips the asking test only when the PostgreSQL binaries are absent (`make system-deps`)."""
    if "c" not in _CLUSTER:
        bindir = find_pg_bin()
        if bindir is None:
            pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: run `make system-deps`")
        cluster = PostgresCluster(bindir).start()
        _CLUSTER["c"] = cluster

        def stop() -> None:
            _CLUSTER.pop("c", None)
            cluster.stop()

        config.add_cleanup(stop)
    return _CLUSTER["c"]
