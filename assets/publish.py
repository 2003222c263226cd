"""Stage `publish`: versioned, signed feeds under the exports root (exchange.md §1)."""

from datetime import datetime, timezone

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource

# columns that exist for the rules' joins but never leave the warehouse
PRIVATE_COLUMNS = {"subject_code_full"}


@dg.asset(group_name="publish", deps=["rules_results"], pool="warehouse", kinds={"parquet"},
          description="One version id across all feeds: full.parquet/csv/jsonl, delta.jsonl, "
                      "signed manifest; index.json written last.")
def published_feeds(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
    from safecredit.publish import Publisher

    pol = exchange.policy()
    with exchange.warehouse("publish") as con:
        cols = [r[0] for r in con.execute("DESCRIBE rules.blacklist").fetchall()
                if r[0] not in PRIVATE_COLUMNS]
        blacklist = con.sql(f"SELECT {', '.join(cols)} FROM rules.blacklist ORDER BY entry_id").to_arrow_table()
    feeds = {"blacklist": blacklist}
    pub = Publisher(exchange.paths.exports, exchange.paths.keys,
                    retention=int(pol.get("publication.retention_versions", 30)))
    result = pub.publish(feeds, as_of=exchange.as_of_date(), policy_version=pol.version,
                         generated_at=datetime.now(timezone.utc),
                         max_shrink=float(pol.get("publication.max_shrink", 0.2)))
    ok = bool(getattr(result, "published", getattr(result, "ok", False)))
    meta = {
        "published": ok,
        "version": str(getattr(result, "version", "")),
        "reasons": dg.MetadataValue.json(list(getattr(result, "reasons", []) or [])),
        "rows": dg.MetadataValue.json({k: v.num_rows for k, v in feeds.items()}),
        "exports": str(exchange.paths.exports),
    }
    (context.log.info if ok else context.log.warning)(f"publication: {meta}")
    return dg.MaterializeResult(metadata=meta)
