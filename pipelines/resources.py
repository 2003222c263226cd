"""Resources of the code location: where the exchange lives and how to reach the warehouse.

`SAFECREDIT_HOME` / `SAFECREDIT_SOURCES` choose the deployment, so `dagster dev -w workspace.yaml`
and `safecredit run` see the same home, sources and warehouse.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from datetime import date, datetime
from typing import Iterator

import dagster as dg

from safecredit import config
from safecredit.config import SHANGHAI
from safecredit.policy import Policy, policy_for



class ExchangeResource(dg.ConfigurableResource):
    """The exchange's home directory, sources file and the date a run answers for."""

    home: str = ""
    sources: str = ""
    as_of: str = ""          # YYYY-MM-DD; empty = today in Asia/Shanghai
    known_at: str = ""       # YYYY-MM-DD; only versions landed by then (rules.md §3); empty = all
    lock_wait_seconds: float = 1800.0  # a step waits this long for the warehouse before failing

    @property
    def paths(self) -> config.Paths:
        return config.paths(self.home or None)

    def departments(self) -> list[config.Department]:
        return config.load_sources(config.resolve_sources_path(self.sources or None, self.paths.home))

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
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text().strip()

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


def default_resources() -> dict:
    return {"exchange": ExchangeResource(home=os.environ.get("SAFECREDIT_HOME", ""),
                                         sources=os.environ.get("SAFECREDIT_SOURCES", ""))}
