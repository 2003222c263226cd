"""Stage `publish`: versioned, signed feeds under the exports root (exchange.md §1)."""

from datetime import datetime, timezone

import dagster as dg
from dagster import AssetExecutionContext

from pipelines.resources import ExchangeResource

def is_private(column: str) -> bool:
    """Columns kept for the rules' joins that never leave the warehouse (full ID numbers …)."""
    return column.endswith("_full")


# The same for every row of a version, and already in its manifest: kept out of the rows so a
# delta carries only real changes (otherwise every row would be MOD each day).
RUN_CONSTANTS = {"as_of"}


def feed_tables(con) -> dict:
    """Every feed of exchange.md §1 the rules produced (`rules.<feed>`), public columns only: DuckDB
    relations on `con`, which the publisher streams (read them while `con` is open)."""
    from safecredit.publish import FEEDS

    present = {t for (t,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'rules'").fetchall()}
    out = {}
    for feed, spec in FEEDS.items():
        if feed not in present:
            continue
        cols = [r[0] for r in con.execute(f"DESCRIBE rules.{feed}").fetchall()
                if not is_private(r[0]) and r[0] not in RUN_CONSTANTS]
        out[feed] = con.sql(f"SELECT {', '.join(cols)} FROM rules.{feed}")
    return out


def held_back_sources(con, raw_root) -> list[dict]:
    """Sources whose data in this publication is not their latest: batches held back by their
    contract checks, and departments that could not be reached (their previous data stands)."""
    from safecredit.landing import source_states

    out = [{"department": d, "dataset": ds, "batch": f, "kind": "held_back", "reason_zh": zh, "reason_en": en}
           for d, ds, f, zh, en in con.execute(
               "SELECT department, dataset, fetch_id, reason_zh, reason_en FROM quality.batches "
               "WHERE held ORDER BY ALL").fetchall()]
    for st in source_states(raw_root):
        if st.get("last_status") not in (None, "landed"):
            out.append({"department": st["department"], "dataset": st["dataset"], "kind": "unreachable",
                        "last_success": st.get("last_success"), "reason_zh": st.get("last_error_zh"),
                        "reason_en": st.get("last_error_en")})
    return out


def staleness_failures(raw_root, max_days: float, now: datetime) -> list[dict]:
    """exchange.md §1: no source may be staler than policy allows (default 7 days) since the
    department last answered; its previous data stands until then."""
    from safecredit.freshness import since_last_fetch

    out = []
    for st in since_last_fetch(raw_root, now):
        last = st.get("last_success")
        age = float("inf") if st["age_days"] is None else st["age_days"]
        if age > max_days:
            out.append({"assertion": "source_staleness", "feed": "*",
                        "message": f"{st['department']}/{st['dataset']}: last successful fetch "
                                   f"{last or 'never'} is {age:.1f} days old (> {max_days:g}); "
                                   f"数据源 {st['department']}/{st['dataset']} 已超过 {max_days:g} 天未成功拉取"})
    return out


@dg.asset(group_name="publish", deps=["rules_results"], pool="warehouse", kinds={"parquet"},
          description="One version id across all feeds: full.parquet/csv/jsonl, delta.jsonl, "
                      "signed manifest naming held-back sources; index.json written last.")
def published_feeds(context: AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
    from safecredit.publish import Publisher

    pol = exchange.policy()
    now = datetime.now(timezone.utc)
    max_stale = float(pol.get("publication.max_source_staleness_days", 7))
    pub = Publisher(exchange.paths.exports, exchange.paths.keys,
                    retention=int(pol.get("publication.retention_versions", 30)))
    from safecredit.progress import bar

    with exchange.warehouse("publish") as con:  # the feeds stream from the warehouse into the files
        feeds = feed_tables(con)
        held = held_back_sources(con, exchange.paths.raw)
        with bar(f"publish {len(feeds)} feeds", total=None):
            result = pub.publish(feeds, as_of=exchange.as_of_date(), policy_version=pol.version,
                                 generated_at=now, held_back=held,
                                 assertions=lambda _f, _p: staleness_failures(exchange.paths.raw, max_stale, now),
                                 max_shrink=float(pol.get("publication.max_shrink", 0.2)))
    if result.ok:  # the publication report, beside the feeds: <exports>/reports/<version>.html (served at /report)
        from safecredit.report_html import render_report, write_report
        try:
            with exchange.warehouse("publish") as con:
                html = render_report(con, exchange.paths.raw, result.version, exchange.as_of_date(), pol.version,
                                     generated_at=now, max_stale_days=max_stale)
            context.log.info(f"publication report: {write_report(exchange.paths.exports, result.version, html)}")
        except Exception as exc:  # the report never blocks a publication that already succeeded
            context.log.warning(f"publication report for {result.version} not written: {exc!r}")
    meta = {
        "published": result.ok,
        "version": result.version,
        "reasons": dg.MetadataValue.json(list(result.reasons or [])),
        "held_back": dg.MetadataValue.json(held),
        "rows": dg.MetadataValue.json(result.rows),
        # per feed: rows and the delta against the previous version (what mirrors will apply)
        "feeds": dg.MetadataValue.json({k: {"rows": result.rows[k], **(m.get("delta") or {})}
                                        for k, m in (result.feeds or {}).items()}),
        "exports": str(exchange.paths.exports),
    }
    (context.log.info if result.ok else context.log.warning)(
        f"publication {result.version}: {'published' if result.ok else 'blocked'} {result.reasons or ''}")
    return dg.MaterializeResult(metadata=meta)
