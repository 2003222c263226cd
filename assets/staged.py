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
        from safecredit.reuse import stage_landed

        # everything landed counts, whether or not its department is still configured: staging
        # is a pure function of the raw landing, which is what makes `replay` possible
        hold_back = exchange.policy().get("publication.hold_back", {})
        with exchange.warehouse(f"staged_{dataset}") as con:
            counts, done = stage_landed(con, exchange.paths.raw, dataset, hold_back, reuse=exchange.reuse)
        if done != "staged":
            context.log.info(f"{dataset}: nothing new landed since the last staging ({done}); its tables stand")
        context.log.info(f"{dataset}: {counts}")
        record_part(exchange.paths, context.run_id, f"staged-{dataset}", {**counts, "staging": done})
        return dg.MaterializeResult(metadata={**counts, "staging": done})

    return _asset


staged_assets = [_staged_asset(ds) for ds in DATASETS]


def _contract_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=staged_key(dataset),
        name="contract_suite",
        blocking=True,
        pool="warehouse",
        description=f"Great Expectations suite generated from contracts/datasets/{dataset}.yaml, "
        "run over the records in force. ERROR: a failure stops the rules and "
        "the publication.",
    )
    def _check(context: dg.AssetCheckExecutionContext, exchange: ExchangeResource) -> dg.AssetCheckResult:
        from safecredit import reuse
        from safecredit.contracts import load_contract
        from safecredit.gx_suites import BATCH_ROWS, validate_reader

        contract = load_contract(dataset)
        cols = ", ".join(f.name for f in contract.fields if f.type != "list")
        with exchange.warehouse(f"check_{dataset}") as con:
            # the suite's verdict on the same staged tables (same fingerprint) is still the verdict
            staged_as = reuse.fingerprint_of(con, f"staged:{dataset}")
            summary = exchange.reused(con, f"contract_suite:{dataset}", staged_as) if staged_as else None
            computed = summary is None
            if computed:  # streamed in batches: 20M penalties never sit in pandas at once
                rows = con.sql(f"SELECT {cols} FROM staged.{dataset}_current")
                summary = validate_reader(contract, rows.to_arrow_reader(BATCH_ROWS))
        if computed:
            if staged_as:
                with exchange.warehouse(f"check_{dataset}") as con:
                    reuse.record(con, f"contract_suite:{dataset}", staged_as, summary)
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
                "suite": summary["suite"],
                "failed": dg.MetadataValue.json(failed),
            },
        )

    return _check


def _batches_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=staged_key(dataset),
        name="batches_accepted",
        blocking=False,
        pool="warehouse",
        description="Every source batch passed its hold-back thresholds (exchange.md §1); "
        "a held batch is kept in the raw landing and named here (WARN: the "
        "run publishes from everything else).",
    )
    def _check(exchange: ExchangeResource) -> dg.AssetCheckResult:
        with exchange.warehouse(f"check_{dataset}") as con:
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

    return _check


def _assertions_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=staged_key(dataset),
        name="dataset_assertions",
        blocking=True,
        pool="warehouse",
        description=f"The `assertions:` of contracts/datasets/{dataset}.yaml over the whole dataset "
        "(records in force, share quarantined). ERROR: a failure stops the publication.",
    )
    def _check(context: dg.AssetCheckExecutionContext, exchange: ExchangeResource) -> dg.AssetCheckResult:
        from safecredit.dataset_assertions import assertions_of, failures

        with exchange.warehouse(f"check_{dataset}") as con:
            failed, measured = failures(con, dataset)
        if failed:
            record_blocked(exchange.paths, context.run.run_id, failed)
        return dg.AssetCheckResult(
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(f["message"] for f in failed) or None,
            metadata={
                **measured,
                "assertions": dg.MetadataValue.json(assertions_of(dataset)),
                "failed": dg.MetadataValue.json(failed),
            },
        )

    return _check


staged_checks = [c for ds in DATASETS for c in (_contract_check(ds), _batches_check(ds), _assertions_check(ds))]
