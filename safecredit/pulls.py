"""A run's pulls, overlapped: every (department, dataset) of a run lands in a thread of its own.

A pull spends most of its life waiting — on the department's answer, on a `429`'s `Retry-After`,
on a backoff after a `5xx` — and requests/urllib3 release the GIL while they wait, so one run's
pulls overlap instead of adding their waits up. Two bounds, both policy values
(`contracts/policy/<name>/ingest.yaml`, with their rationale):

- `ingest.parallel_pulls`: (department, dataset) pulls at once in the whole run;
- `ingest.department_requests_in_flight`: requests on the wire to one department at once, shared by
  every pull of that department and by the day workers of its CSV pulls (politeness). A request
  holds its slot only while it is on the wire, not while it waits out a `429` or a backoff.

Each pull is the one of `safecredit.landing.pull`, unchanged: its own fetch folder, manifest and
watermark, a department's trouble reported in its result and the others going on.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from safecredit.config import Department
from safecredit.connectors.client import DepartmentClient
from safecredit.landing import FetchResult, pull


@dataclass(frozen=True)
class PullBounds:
    parallel_pulls: int = 16
    department_requests_in_flight: int = 4

    @classmethod
    def from_policy(cls, policy) -> PullBounds:
        return cls(
            max(1, int(policy.get("ingest.parallel_pulls", cls.parallel_pulls))),
            max(1, int(policy.get("ingest.department_requests_in_flight", cls.department_requests_in_flight))),
        )


def pull_all(
    tasks: list[tuple[Department, str]],
    raw_root: Path,
    *,
    client_for: Callable[[Department, threading.Semaphore], DepartmentClient],
    bounds: PullBounds = PullBounds(),
    **pull_options,
) -> Iterator[tuple[Department, str, FetchResult]]:
    """Run every `(department, dataset)` pull of `tasks` at once within `bounds`; yields each
    `(department, dataset, result)` as it finishes (in no fixed order: callers order them).

    `client_for(dept, gate)` makes a pull's client with the department's shared `gate`.
    `pull_options` are `landing.pull`'s keyword arguments. A department's trouble is a result
    (`unavailable`/`error`), never an exception; an exception here is a bug or the disk, and is
    raised once the pulls already started have ended (no half-written fetch is left behind:
    `pull` cleans its own)."""
    if not tasks:
        return
    gates = {d.id: threading.BoundedSemaphore(bounds.department_requests_in_flight) for d, _ in tasks}

    def one(dept: Department, dataset: str) -> FetchResult:
        with client_for(dept, gates[dept.id]) as client:
            return pull(dept, dataset, raw_root, client=client, **pull_options)

    workers = min(bounds.parallel_pulls, len(tasks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull") as pool:
        pending: dict[Future, tuple[Department, str]] = {pool.submit(one, d, ds): (d, ds) for d, ds in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    dept, dataset = pending.pop(fut)
                    yield dept, dataset, fut.result()
        finally:
            for fut in pending:  # an exception (or the caller stopped): start nothing new
                fut.cancel()
