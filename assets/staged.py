"""Stage `staged`: landing → DuckDB raw, typed history, current state, quarantine."""

import dagster as dg

from assets.ingest import landing_key
from assets.resources import ExchangeResource
from safecredit.config import DATASETS
from safecredit.run_summary import record_blocked, record_part


def staged_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["staged", dataset])


def _staged_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=staged_key(dataset),
        group_name="staged",
        deps=[landing_key(dataset)],
        pool="warehouse",
        kinds={"duckdb"},
        description=f"`staged.{dataset}` (typed history) and `staged.{dataset}_current`, "
        "validated against contracts/datasets/" + dataset + ".yaml.",
    )
    def _asset(context: dg.AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
        from safecredit.gx_suites import prewarm as prewarm_contract_suites
        from safecredit.reuse import stage_landed

        # everything landed counts, whether or not its department is still configured: staging
        # is a pure function of the raw landing, which is what makes `replay` possible
        hold_back = exchange.policy().get("publication.hold_back", {})
        with exchange.warehouse(f"staged_{dataset}") as con:
            counts, done = stage_landed(con, exchange.paths.raw, dataset, hold_back, reuse=exchange.reuse)
        if done in ("reused", "repeats"):
            context.log.info(f"{dataset}: nothing new landed since the last staging ({done}); its tables stand")
        else:
            prewarm_contract_suites()  # the suite will read what was staged: start loading GX now
            if done == "increment":
                context.log.info(f"{dataset}: the new fetches staged on their own and added to the history")
        context.log.info(f"{dataset}: {counts}")
        record_part(exchange.paths, context.run_id, f"staged-{dataset}", {**counts, "staging": done})
        return dg.MaterializeResult(metadata={**counts, "staging": done})

    return _asset


staged_assets = [_staged_asset(ds) for ds in DATASETS]


# A dataset's three checks run as one step (one warehouse connection, one Dagster step instead of
# three): on a night with nothing new each step costs about a second of Dagster's own overhead, and
# the three judge the same tables. Each stays its own check in the UI, blocking as it says.
STAGED_CHECKS = {
    "contract_suite": (
        True,
        "Great Expectations suite generated from contracts/datasets/{dataset}.yaml, run over the records "
        "in force. ERROR: a failure stops the rules and the publication.",
    ),
    "batches_accepted": (
        False,
        "Every source batch passed its hold-back thresholds (exchange.md §1); a held batch is kept in the "
        "raw landing and named here (WARN: the run publishes from everything else).",
    ),
    "dataset_assertions": (
        True,
        "The `assertions:` of contracts/datasets/{dataset}.yaml over the whole dataset (records in force, "
        "share quarantined). ERROR: a failure stops the publication.",
    ),
}


def _contract_result(context, exchange: ExchangeResource, con, dataset: str) -> dg.AssetCheckResult:
    from safecredit import reuse
    from safecredit.contracts import load_contract
    from safecredit.gx_suites import validate_current

    contract = load_contract(dataset)
    step = f"contract_suite:{dataset}"
    # the suite's verdict on the same staged tables (same fingerprint) is still the verdict; after
    # new fetches, a passing verdict needs only their records validated (validate_current)
    staged_as = reuse.fingerprint_of(con, f"staged:{dataset}")
    previous = reuse.outputs_of(con, step) if exchange.reuse else None
    summary = exchange.reused(con, step, staged_as) if staged_as else None
    if summary is None:
        # staging counted the records in force (its ledger row): not counted a second time
        counted = (reuse.outputs_of(con, f"staged:{dataset}") or {}).get("counts", {}).get("current")
        summary = validate_current(con, contract, previous, counted)
        if staged_as:
            reuse.record(con, step, staged_as, summary)
    failed = summary["failed"]
    if not summary["success"]:
        record_blocked(
            exchange.paths,
            context.run.run_id,
            [
                {
                    "assertion": "contract_suite",
                    "dataset": dataset,
                    "message": f"{dataset}: {len(failed)} expectation(s) of the contract failed over the "
                    f"records in force / {dataset}：现行记录有 {len(failed)} 项数据契约期望未通过: {failed}",
                }
            ],
        )
    return dg.AssetCheckResult(
        asset_key=staged_key(dataset),
        check_name="contract_suite",
        passed=summary["success"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if summary["success"]
        else f"{len(failed)} expectation(s) of contracts/datasets/{dataset}.yaml failed over the records "
        f"in force: {failed}",
        metadata={
            "evaluated": summary["evaluated"],
            "successful": summary["successful"],
            "rows": summary["rows"],
            # records in force the suite read this time (the rest passed it on an earlier night)
            "validated_rows": summary.get("validated_rows", summary["rows"]),
            "suite": summary["suite"],
            "failed": dg.MetadataValue.json(failed),
        },
    )


def _batches_result(con, dataset: str) -> dg.AssetCheckResult:
    held = con.execute(
        "SELECT department, fetch_id, reason_zh, reason_en FROM quality.batches "
        "WHERE dataset = ? AND held ORDER BY 1, 2",
        [dataset],
    ).fetchall()
    q = con.execute(
        "SELECT rule_id, count(*) FROM quality.violations WHERE dataset = ? GROUP BY 1 ORDER BY 2 DESC, 1",
        [dataset],
    ).fetchall()
    return dg.AssetCheckResult(
        asset_key=staged_key(dataset),
        check_name="batches_accepted",
        passed=not held,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(en for *_, en in held) or None,
        metadata={
            "held_back": dg.MetadataValue.json(
                [{"department": d, "batch": f, "reason_zh": zh, "reason_en": en} for d, f, zh, en in held]
            ),
            "violations_by_rule": dg.MetadataValue.json(dict(q)),
        },
    )


def _assertions_result(context, exchange: ExchangeResource, con, dataset: str) -> dg.AssetCheckResult:
    from safecredit.dataset_assertions import assertions_of, failures

    failed, measured = failures(con, dataset)
    if failed:
        record_blocked(exchange.paths, context.run.run_id, failed)
    return dg.AssetCheckResult(
        asset_key=staged_key(dataset),
        check_name="dataset_assertions",
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f["message"] for f in failed) or None,
        metadata={
            **measured,
            "assertions": dg.MetadataValue.json(assertions_of(dataset)),
            "failed": dg.MetadataValue.json(failed),
        },
    )


def _dataset_checks(dataset: str) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"staged_{dataset}_checks",
        specs=[
            dg.AssetCheckSpec(
                name, asset=staged_key(dataset), blocking=blocking, description=text.format(dataset=dataset)
            )
            for name, (blocking, text) in STAGED_CHECKS.items()
        ],
        pool="warehouse",
    )
    def _checks(context: dg.AssetCheckExecutionContext, exchange: ExchangeResource):
        with exchange.warehouse(f"check_{dataset}") as con:
            yield _contract_result(context, exchange, con, dataset)
            yield _batches_result(con, dataset)
            yield _assertions_result(context, exchange, con, dataset)

    return _checks


staged_checks = [_dataset_checks(ds) for ds in DATASETS]
