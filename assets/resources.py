"""Resources the assets use: where the exchange lives, how departments are reached, where alerts go.

Nothing here reads the environment when the code location loads: `pipelines/definitions.py`
binds `dg.EnvVar("SAFECREDIT_HOME")` and `dg.EnvVar("SAFECREDIT_ALERT_WEBHOOK")`, resolved by
Dagster when a run or tick starts; the sources file is resolved then too (`SAFECREDIT_SOURCES`,
else `<home>/sources.yaml`, operations.md). `safecredit run` passes explicit values through the
run config instead.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Iterator

import dagster as dg

from safecredit import config
from safecredit.config import SHANGHAI
from safecredit.policy import Policy, policy_for

if TYPE_CHECKING:
    from safecredit.connectors.client import DepartmentClient


class ExchangeResource(dg.ConfigurableResource):
    """The exchange's home directory, sources file and the date a run answers for."""

    home: str = ""  # empty: the working directory (operations.md)
    sources: str = ""  # empty: $SAFECREDIT_SOURCES at run time, else <home>/sources.yaml
    as_of: str = ""  # YYYY-MM-DD; empty = today in Asia/Shanghai
    known_at: str = ""  # YYYY-MM-DD; only versions landed by then (rules.md §3); empty = all
    lock_wait_seconds: float = 1800.0  # a step waits this long for the warehouse before failing
    # a step whose inputs' fingerprint matches its last completed run reuses its tables
    # (safecredit/reuse.py); False rebuilds everything (`safecredit replay`)
    reuse: bool = True

    @property
    def paths(self) -> config.Paths:
        return config.paths(self.home or None)

    def sources_path(self):
        return config.resolve_sources_path(self.sources or None, self.paths.home)

    def departments(self) -> list[config.Department]:
        return config.load_sources(self.sources_path())

    def as_of_date(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else datetime.now(SHANGHAI).date()

    def known_at_date(self) -> date | None:
        return date.fromisoformat(self.known_at) if self.known_at else None

    def policy(self) -> Policy:
        return policy_for(self.as_of_date())

    def person_salt(self) -> str:
        """Key for person ids (a keyed hash of the ID number); made on first use, never committed."""
        path = self.paths.keys / "person-id.key"
        if not path.exists():
            from safecredit.publish.signing import private_dir

            private_dir(path.parent)  # keys/ was left 0755 by a plain mkdir
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip()

    def reused(self, con, step: str, fingerprint: str) -> dict | None:
        """The outputs `step` recorded with this fingerprint (None: compute, having forgotten the old)."""
        from safecredit import reuse

        found = reuse.reusable(con, step, fingerprint) if self.reuse else None
        if found is None:
            reuse.forget(con, step)
        return found

    def run_inputs(self, *parts, dated: bool = True) -> str:
        """The fingerprint of what a rules step reads besides its own upstream steps: code, policy,
        dates, the person-id key (hashed). `dated=False` for a step that reads neither `as_of` nor
        the policy (subject resolution): a night that only moves the date reuses it."""
        import hashlib

        from safecredit import reuse

        salt = hashlib.sha256(self.person_salt().encode()).hexdigest()
        dates = (self.policy().version, self.as_of_date()) if dated else ()
        return reuse.digest(reuse.code_digest(), *dates, self.known_at, salt, *parts)

    @contextmanager
    def warehouse(self, holder: str = "dagster") -> Iterator:
        """The one writer connection, under the lock the CLI shares."""
        from safecredit.warehouse import connect, writer_lock

        with writer_lock(self.paths, holder, wait=self.lock_wait_seconds):
            con = connect(self.paths.warehouse)
            try:
                yield con
            finally:
                con.close()


class DepartmentFeedsResource(dg.ConfigurableResource):
    """How the exchange talks to departments (department-feeds.md): one HTTP client per department.

    Landing and the change sensor get their clients here, so a test can hand them a stub client
    (a subclass overriding `client`) as well as point them at the simulator.
    """

    max_attempts: int = 0  # 0: the department's own setting (sources file) or the default
    read_timeout: float = 0.0  # seconds; 0: likewise

    def client(self, dept: config.Department, *, quick: bool = False, gate=None) -> DepartmentClient:
        """A client for `dept`; `quick` for cheap polling (two attempts, short backoff); `gate` the
        department's bound on requests in flight, shared by a run's pulls (safecredit.pulls)."""
        from dataclasses import replace

        from safecredit.connectors.client import DepartmentClient, RetryPolicy

        retry = RetryPolicy(**{k: v for k, v in dept.options.get("retry", {}).items()})
        if quick:
            retry = replace(retry, max_attempts=2, backoff_base=0.2, read_timeout=20)
        if self.max_attempts:
            retry = replace(retry, max_attempts=self.max_attempts)
        if self.read_timeout:
            retry = replace(retry, read_timeout=self.read_timeout)
        return DepartmentClient(dept, retry, gate=gate)


class AlertWebhookResource(dg.ConfigurableResource):
    """Where failed runs are reported: a URL that accepts a JSON POST, and the UI's base URL for
    the link in each alert."""

    url: str
    ui_url: str = "http://127.0.0.1:3000"
