"""Stages `subjects` and `rules`: the SQL rules over the staged tables (rules/*.sql).

The rules run once, in one step, but each table they publish is its own asset (`rules/<table>`),
so the asset graph shows which feed comes from which staged datasets and which other rule tables.
"""

import dagster as dg

from assets.resources import ExchangeResource
from assets.staged import staged_key
from safecredit.config import DATASETS
from safecredit.run_summary import decisions_part, record_part

SUBJECTS = dg.AssetKey(["subjects", "resolved"])

# What each published rule table reads besides the resolved subjects (registry, penalty decisions):
# staged datasets, then other rule tables. Kept beside the SQL that defines it (rules/NN_<table>.sql).
RULE_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "blacklist": (("accidents", "credit_actions", "listing_decisions"), ()),  # 10_, 20_, 25_, 30_
    "listing_candidates": (("listing_decisions",), ("blacklist",)),  # 32_
    # 33_: every entry's status for every as_of (what the API answers another as_of from)
    "listing_timeline": (("credit_actions", "listing_decisions"), ("blacklist",)),
    # 35_: the restrictions for every as_of; `restrictions` is it at the run's as_of
    "restriction_timeline": (("accidents",), ("listing_timeline",)),
    "restrictions": ((), ("restriction_timeline",)),
    "penalties_public": (("credit_actions",), ()),  # 40_
    "credit_scores": (("accidents",), ("blacklist",)),  # 50_
    "incentives": (("enterprises", "accidents"), ("blacklist", "credit_scores")),  # 55_
    "premium_factors": (("accidents",), ("blacklist",)),  # 60_
    "injury_insurance_factors": (("enterprises", "accidents"), ("blacklist", "credit_scores")),  # 65_
    "intermediary_ratings": (("intermediary_ratings",), ("blacklist",)),  # 70_
}


def rules_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["rules", table])


@dg.asset(
    key=SUBJECTS,
    group_name="subjects",
    deps=[staged_key(ds) for ds in DATASETS],
    pool="warehouse",
    kinds={"duckdb"},
    description="One row per penalty decision (duplicates across departments kept once), each "
    "resolved to a stable subject id: USCC, or via the registry from old codes and "
    "former names; persons by a keyed hash of the ID number (rules/subjects/*.sql).",
)
def subjects_resolved(context: dg.AssetExecutionContext, exchange: ExchangeResource) -> dg.MaterializeResult:
    from safecredit import reuse
    from safecredit.rules import run_subjects

    with exchange.warehouse("subjects") as con:
        # rules/subjects/*.sql read neither as_of nor the policy (a test keeps it so): only the
        # staged tables, known_at and the person-id key decide them
        fingerprint = exchange.run_inputs(_staged_fingerprints(con), dated=False)
        if exchange.reused(con, "subjects", fingerprint) is None:
            run_subjects(
                con, exchange.as_of_date(), exchange.policy(), exchange.person_salt(), exchange.known_at_date()
            )
            reuse.record(con, "subjects", fingerprint)
        else:
            context.log.info("no staged dataset changed since the last resolution: subjects reused")
        report = con.execute("SELECT department, resolved_by, decisions FROM subjects.resolution_report").fetchall()
        dups = con.execute(
            "SELECT count(DISTINCT (authority_code, decision_no)) FROM subjects.duplicate_decisions"
        ).fetchone()[0]
    per_source: dict = {}
    for dept, how, n in report:
        per_source.setdefault(dept, {})[how] = n
    unresolved = sum(n for _, how, n in report if how == "unresolved")
    (context.log.warning if unresolved else context.log.info)(
        f"resolution per source {per_source}; decisions reported by several departments: {dups}"
    )
    part = {"resolution": per_source, "unresolved": unresolved, "duplicate_decisions": dups}
    record_part(exchange.paths, context.run_id, "subjects", part)
    return dg.MaterializeResult(metadata={**part, "resolution": dg.MetadataValue.json(per_source)})


def _staged_fingerprints(con) -> dict[str, str | None]:
    from safecredit import reuse

    return {ds: reuse.fingerprint_of(con, f"staged:{ds}") for ds in DATASETS}


def _rule_spec(table: str) -> dg.AssetSpec:
    datasets, tables = RULE_TABLES[table]
    return dg.AssetSpec(
        rules_key(table),
        group_name="rules",
        kinds={"duckdb"},
        deps=[SUBJECTS, *(staged_key(d) for d in datasets), *(rules_key(t) for t in tables)],
        description=f"`rules.{table}` as of the run's date under the policy in force (rules/*.sql).",
    )


@dg.multi_asset(
    name="rules",
    specs=[_rule_spec(t) for t in RULE_TABLES],
    can_subset=False,
    pool="warehouse",
    description="Runs rules/*.sql once, in file-name order, over the resolved subjects and "
    "the staged tables; one asset per table it publishes.",
)
def rules_results(context: dg.AssetExecutionContext, exchange: ExchangeResource):
    from safecredit import reuse
    from safecredit.rules import run_rules

    as_of = exchange.as_of_date()
    pol = exchange.policy()
    # each department's kind and decisions setting choose its list regime (operations.md); a replay
    # without a sources file keeps the ones the last run recorded in the warehouse
    depts = exchange.departments() if exchange.sources_path().exists() else None
    if depts is None:
        context.log.warning("no sources file: department kinds as recorded by the previous run")
    with exchange.warehouse("rules") as con:
        kinds = sorted((d.id, d.kind, d.decisions) for d in depts) if depts is not None else None
        fingerprint = exchange.run_inputs(_staged_fingerprints(con), reuse.fingerprint_of(con, "subjects"), kinds)
        ran = (exchange.reused(con, "rules", fingerprint) or {}).get("sql_files")
        if ran is None:
            ran = run_rules(
                con, as_of, pol, exchange.person_salt(), known_at=exchange.known_at_date(), departments=depts
            )
            reuse.record(con, "rules", fingerprint, {"sql_files": ran})
        else:
            context.log.info("inputs, policy and dates as in the last run: the rule tables are reused")
        rows = {t: con.execute(f"SELECT count(*) FROM rules.{t}").fetchone()[0] for t in RULE_TABLES}
        by_status = dict(con.execute("SELECT status, count(*) FROM rules.blacklist GROUP BY ALL ORDER BY 1").fetchall())
        by_ground = dict(con.execute("SELECT ground, count(*) FROM rules.blacklist GROUP BY ALL ORDER BY 1").fetchall())
        # entries whose notice period reaches an unpublished year, and triggers naming no principal of
        # the time: reported, never listed silently
        gaps = dict(con.execute("SELECT year, count(*) FROM rules.calendar_gaps GROUP BY ALL ORDER BY 1").fetchall())
        no_principal = con.execute("SELECT count(*) FROM rules.principal_gaps").fetchone()[0]
        decisions = decisions_part(con)
    context.log.info(f"blacklist by status {by_status}, by ground {by_ground}")
    if gaps:
        context.log.warning(f"entries waiting for an unpublished holiday calendar (year: entries) {gaps}")
    if no_principal:
        context.log.warning(f"{no_principal} listing triggers name no principal of the time (rules.principal_gaps)")
    part = {
        "as_of": str(as_of),
        "policy_version": pol.version,
        "sql_files": ran,
        "entries_by_status": by_status,
        "entries_by_ground": by_ground,
        "calendar_gaps": {str(y): n for y, n in gaps.items()},
        "principal_gaps": no_principal,
    }
    record_part(exchange.paths, context.run_id, "rules", part)
    record_part(exchange.paths, context.run_id, "listing-decisions", decisions)
    if decisions["disagreements_count"] or decisions["overdue_count"]:
        context.log.warning(
            f"listing decisions: {decisions['disagreements_count']} disagree with the computed list "
            f"(rules.listing_decision_issues), {decisions['overdue_count']} entries overdue (rules.overdue_candidates)"
        )
    for table in RULE_TABLES:
        extra = (
            {
                "entries_by_status": dg.MetadataValue.json(by_status),
                "entries_by_ground": dg.MetadataValue.json(by_ground),
            }
            if table == "blacklist"
            else {}
        )
        yield dg.MaterializeResult(
            asset_key=rules_key(table),
            metadata={"rows": rows[table], "as_of": str(as_of), "policy_version": pol.version, **extra},
        )
