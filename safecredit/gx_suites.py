"""Great Expectations 1.x suites generated from the data contracts.

GX has no Polars or working DuckDB source, so the staged rows go DuckDB → Arrow → pandas and are
validated in an ephemeral context (analytics off). Row-level quarantine is done in SQL
(safecredit.contracts); these suites are the independent, dataset-level second opinion whose
results land in the Dagster asset check metadata.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache

from safecredit.contracts import Contract

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

USCC_REGEX = r"^[0-9A-HJ-NPQRTUWXY]{18}$"
NON_NEGATIVE = {"decimal", "integer"}


def expectations_for(contract: Contract) -> list:
    import great_expectations as gx

    E = gx.expectations
    out = []
    for f in contract.fields:
        if f.type == "list":
            continue
        out.append(E.ExpectColumnToExist(column=f.name))
        if f.required:
            out.append(E.ExpectColumnValuesToNotBeNull(column=f.name))
        if f.type == "enum" and f.values:
            out.append(E.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.values)))
        if f.type == "uscc":
            out.append(E.ExpectColumnValuesToMatchRegex(column=f.name, regex=USCC_REGEX))
        if f.type in NON_NEGATIVE:
            out.append(E.ExpectColumnValuesToBeBetween(column=f.name, min_value=0))
    return out


_prewarm_lock = threading.Lock()
_prewarmed: threading.Thread | None = None


def prewarm() -> None:
    """Start importing Great Expectations (and building its context) in a background thread.

    The import alone takes 4-10 s of mostly Python work. A run that landed or staged records
    will need it for the contract suite, so it starts here, while that run still waits on the
    departments or on DuckDB (both release the GIL); the suite then finds it done (Python's
    import lock makes the first real use wait for a half-finished import, never repeat it).
    A night with nothing new never calls this and never pays for GX.
    """
    global _prewarmed
    with _prewarm_lock:
        if _prewarmed is not None or "great_expectations" in sys.modules:
            return
        _prewarmed = threading.Thread(target=_context, name="gx-prewarm", daemon=True)
        _prewarmed.start()


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


# rows per GX batch: every expectation of the suites is row-wise (no uniqueness, no aggregate), so a
# verdict over consecutive batches is the verdict over the whole table, in memory bounded by a batch
BATCH_ROWS = 1_000_000


def validate_frame(contract: Contract, frame) -> dict:
    """Run the contract's suite over a pandas DataFrame; returns a JSON-able summary."""
    return validate_batches(contract, [frame])


def validate_reader(contract: Contract, reader) -> dict:
    """The suite over an Arrow RecordBatchReader (e.g. DuckDB's `fetch_record_batch`), one pandas
    frame of at most `BATCH_ROWS` rows at a time: a national table never sits in pandas whole."""
    return validate_batches(contract, (batch.to_pandas() for batch in reader))


def validate_batches(contract: Contract, frames) -> dict:
    """The suite over consecutive frames of one table, merged: an expectation succeeds when it does
    in every frame; unexpected counts add up; samples come from the first frames that have them."""
    failed: dict[tuple, dict] = {}
    rows, evaluated, success, name = 0, 0, True, ""
    for frame in frames:
        part = _validate_one(contract, frame)
        rows += part["rows"]
        evaluated, name = part["evaluated"], part["suite"]
        success = success and part["success"]
        for f in part["failed"]:
            key = (f["expectation"], f["column"])
            if key not in failed:
                failed[key] = dict(f)
                continue
            seen = failed[key]
            if f["unexpected_count"] is not None:
                seen["unexpected_count"] = (seen["unexpected_count"] or 0) + f["unexpected_count"]
            seen["sample"] = (seen["sample"] + f["sample"])[:5]
    if not name:  # no rows at all: the suite over an empty frame of the contract's columns
        import pandas as pd

        return _validate_one(contract, pd.DataFrame({f.name: [] for f in contract.fields if f.type != "list"}))
    return {
        "success": success,
        "evaluated": evaluated,
        "successful": evaluated - len(failed),
        "rows": rows,
        "suite": name,
        "failed": list(failed.values()),
    }


def _validate_one(contract: Contract, frame) -> dict:
    import great_expectations as gx

    ctx = _context()
    name = f"{contract.dataset}-{contract.version}"
    try:
        suite = ctx.suites.get(name)
    except Exception:  # noqa: BLE001 — GX raises its own not-found types across versions
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations_for(contract)))
    try:
        ds = ctx.data_sources.get("staged")
    except Exception:  # noqa: BLE001
        ds = ctx.data_sources.add_pandas("staged")
    try:
        asset = ds.get_asset(contract.dataset)
    except Exception:  # noqa: BLE001
        asset = ds.add_dataframe_asset(contract.dataset)
    try:
        bd = asset.get_batch_definition("whole")
    except Exception:  # noqa: BLE001
        bd = asset.add_batch_definition_whole_dataframe("whole")
    # BASIC: counts and a sample per expectation without SUMMARY's whole-frame copies (2x faster at 1M rows)
    result = bd.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format="BASIC")
    failed = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            failed.append(
                {
                    "expectation": cfg.type,
                    "column": cfg.kwargs.get("column"),
                    "unexpected_count": (r.result or {}).get("unexpected_count"),
                    "sample": [str(v) for v in (r.result or {}).get("partial_unexpected_list", [])[:5]],
                }
            )
    stats = result.statistics
    return {
        "success": bool(result.success),
        "evaluated": int(stats["evaluated_expectations"]),
        "successful": int(stats["successful_expectations"]),
        "rows": int(len(frame)),
        "suite": name,
        "failed": failed,
    }


def validate_current(con, contract: Contract, previous: dict | None = None, in_force: int | None = None) -> dict:
    """The suite over `staged.<dataset>_current`, returned with what it covered (`fetches`, `code`)
    so the next night can pass it back as `previous`.

    Every expectation is row-wise and a staged row never changes once staged (a new version is a new
    row), so when the previous verdict was a success under the same suite and code, the records in
    force it saw still pass: only the records in force that came with fetches it did not cover are
    validated (`validated_rows`), and the verdict over them is the verdict over the dataset. A
    previous failure, a new contract version or new code validates everything again. `in_force`:
    the records in force as staging counted them (counted here when not given)."""
    from safecredit.reuse import code_digest

    dataset = contract.dataset
    cols = ", ".join(f.name for f in contract.fields if f.type != "list")
    fetches = con.execute(f"SELECT DISTINCT department, fetch_id FROM staged.{dataset} ORDER BY ALL").fetchall()
    seen = [tuple(f) for f in (previous or {}).get("fetches", ())]
    incremental = (
        bool(previous)
        and previous.get("success") is True
        and previous.get("suite") == f"{dataset}-{contract.version}"
        and previous.get("code") == code_digest()
        and bool(seen)
    )
    where = ""
    if incremental:
        # one statement, not a row each: a department landing a CSV file per day has thousands
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _suite_seen AS "
            "SELECT unnest(?::VARCHAR[]) AS department, unnest(?::VARCHAR[]) AS fetch_id",
            [[d for d, _ in seen], [f for _, f in seen]],
        )
        where = " WHERE (department, fetch_id) NOT IN (SELECT (department, fetch_id) FROM _suite_seen)"
    # streamed in batches: 20M penalties never sit in pandas at once
    reader = con.sql(f"SELECT {cols} FROM staged.{dataset}_current{where}").to_arrow_reader(BATCH_ROWS)
    summary = validate_reader(contract, reader)
    if in_force is None:
        in_force = con.execute(f"SELECT count(*) FROM staged.{dataset}_current").fetchone()[0]
    return {
        **summary,
        "rows": in_force,
        "validated_rows": summary["rows"],
        "fetches": [list(f) for f in fetches],
        "code": code_digest(),
    }
