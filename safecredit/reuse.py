"""Work whose inputs did not change is not done again (issue 10 §5): a ledger of input fingerprints.

A night's inputs are the landed versions, the code and policy that read them, `as_of` and
`known_at`. Each warehouse step (`staged/<dataset>`, `subjects/resolved`, `rules`) fingerprints
what it reads; when the ledger holds the same fingerprint from a completed earlier run, the
tables it would rebuild are already exactly what it would build, and the step reports the outputs
it recorded then. The chain makes it safe: a step's fingerprint includes the fingerprints of the
steps it reads, so anything new upstream recomputes everything downstream of it.

A step forgets its ledger row before it touches its tables and records the new one only after
they are complete, so a crash in between leaves no row and the next run recomputes. `replay`
(a deliberate rebuild) does not consult the ledger.

What counts as code: every module of the warehouse path, the rules' SQL and the contracts (so a
fix always recomputes); the file list is read once per process.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from safecredit.config import REPO_ROOT
from safecredit.landing import MANIFEST, SourceDir, landed_departments

LEDGER = "meta.step_inputs"
# the warehouse path: staging, subject resolution, rules (not the API, the simulator, the generator)
_CODE_GLOBS = ("safecredit/*.py", "safecredit/publish/*.py", "rules/**/*.sql", "contracts/**/*.yaml")


def digest(*parts: Any) -> str:
    """A fingerprint of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the warehouse path's code, SQL and contracts (names and bytes)."""
    from importlib.metadata import version

    # the libraries whose answers the tables hold: the SQL engine and the published holiday calendar
    h = hashlib.sha256(f"duckdb {version('duckdb')} chinese-calendar {version('chinese-calendar')}".encode())
    files = sorted({p for g in _CODE_GLOBS for p in REPO_ROOT.glob(g) if p.is_file()})
    for path in files:
        h.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def landed_fetches(raw_root: Path, dataset: str) -> list[tuple[str, Path, str]]:
    """The complete fetches of `dataset` that hold records, (department, directory, sha256 of its
    manifest), in load order; each manifest read once. A pull that found nothing new adds no record
    to the raw table."""
    out = []
    for dept in landed_departments(raw_root, dataset):
        for fetch in SourceDir(raw_root, dept, dataset).fetches():
            text = (fetch / MANIFEST).read_bytes()
            if json.loads(text).get("rows", 1):
                out.append((dept, fetch, hashlib.sha256(text).hexdigest()))
    return out


def _fetch_key(dept: str, fetch: Path) -> str:
    return f"{dept}/{fetch.name}"


def stage_landed(
    con: duckdb.DuckDBPyConnection, raw_root: Path, dataset: str, hold_back: dict, *, reuse: bool = True
) -> tuple[dict, str]:
    """`staged.<dataset>` as the landing, the contract and the hold-back policy make it; returns the
    staging counts and what was done: "reused" (no fetch since the last staging), "repeats" (the
    new fetches only repeat record versions already staged, e.g. a watermark's overlap: the staged
    history stands), "increment" (the new fetches staged on their own and added:
    safecredit.staging_increment) or "staged" (rebuilt from the whole landing: the first run, a
    replay, a change of code, contract or hold-back policy)."""
    from safecredit.contracts import load_contract
    from safecredit.raw_load import load_raw
    from safecredit.staging import stage, staged_counts
    from safecredit.staging_increment import stage_increment

    step = f"staged:{dataset}"
    code = digest(code_digest(), hold_back)
    landed = landed_fetches(raw_root, dataset)
    fetches = [(d, f) for d, f, _ in landed]
    keys = [_fetch_key(d, f) for d, f in fetches]
    fingerprint = digest(code, keys, [sha for *_, sha in landed])
    recorded_as, before = _recorded(con, step)
    if reuse and before.get("code") == code and set(before.get("fetches", ())) <= set(keys):
        new = [f for f, k in zip(fetches, keys) if k not in set(before["fetches"])]
        if not new:
            return before["counts"], "reused"
        forget(con, step)  # a crash from here on leaves no row: the next run stages the whole landing
        done = stage_increment(con, dataset, new, hold_back)
        counts = staged_counts(con, load_contract(dataset))
        # "repeats": the staged history stands, so does its fingerprint and what was built from it
        record(
            con,
            step,
            recorded_as if done == "repeats" else fingerprint,
            {"code": code, "fetches": keys, "counts": counts},
        )
        return counts, done
    forget(con, step)
    load_raw(con, raw_root, landed_departments(raw_root, dataset), dataset)
    counts = stage(con, dataset, hold_back)
    record(con, step, fingerprint, {"code": code, "fetches": keys, "counts": counts})
    return counts, "staged"


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LEDGER} (step VARCHAR PRIMARY KEY, fingerprint VARCHAR NOT NULL, "
        "outputs JSON, recorded_at TIMESTAMPTZ DEFAULT current_timestamp)"
    )


def _recorded(con: duckdb.DuckDBPyConnection, step: str) -> tuple[str | None, dict]:
    """(fingerprint, outputs) of `step`'s ledger row; (None, {}) when it has none."""
    _ensure(con)
    row = con.execute(f"SELECT fingerprint, outputs FROM {LEDGER} WHERE step = ?", [step]).fetchall()
    return (row[0][0], json.loads(row[0][1]) if row[0][1] else {}) if row else (None, {})


def fingerprint_of(con: duckdb.DuckDBPyConnection, step: str) -> str | None:
    """The fingerprint `step` last completed with (None: never, or it is being rebuilt)."""
    return _recorded(con, step)[0]


def reusable(con: duckdb.DuckDBPyConnection, step: str, fingerprint: str) -> dict | None:
    """The outputs `step` recorded when it last completed with this fingerprint, else None."""
    recorded_as, outputs = _recorded(con, step)
    return outputs if recorded_as == fingerprint else None


def outputs_of(con: duckdb.DuckDBPyConnection, step: str) -> dict | None:
    """What `step` recorded when it last completed, whatever its fingerprint (None: nothing)."""
    recorded_as, outputs = _recorded(con, step)
    return outputs if recorded_as is not None else None


def forget(con: duckdb.DuckDBPyConnection, step: str) -> None:
    """Before `step` rebuilds its tables: a crash from here on must not look like a completed step."""
    _ensure(con)
    con.execute(f"DELETE FROM {LEDGER} WHERE step = ?", [step])


def record(con: duckdb.DuckDBPyConnection, step: str, fingerprint: str, outputs: dict | None = None) -> None:
    """After `step` completed its tables."""
    _ensure(con)
    con.execute(
        f"INSERT OR REPLACE INTO {LEDGER} (step, fingerprint, outputs) VALUES (?, ?, ?)",
        [step, fingerprint, json.dumps(outputs or {}, ensure_ascii=False, default=str)],
    )
