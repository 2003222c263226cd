"""`explain`: the department records behind a list entry, a credit score or a premium factor.

`explain` answers `safecredit explain` over the warehouse; `explain_published` answers the API's
`/v1/explain` from the published snapshot (what a consumer may see of a publication). Everything
either returns is safe to show: person ID numbers are masked; each source record is named by
department, dataset, record id and decision number.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import duckdb

from safecredit.codes import is_valid_uscc, normalise_code
from safecredit.errors import NotFound, UserError
from safecredit.publish.formats import json_value


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [{c: json_value(v) for c, v in zip(cols, r)} for r in cur.fetchall()]


def _table_exists(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, table]
        ).fetchone()[0]
    )


def entry_gaps(entry: dict) -> list[dict]:
    """What an entry's list row says the rules could not settle (rules.md §3), each with the rule id
    the run summary reports it under and a bilingual message: a year without a published holiday
    calendar (the entry's dates are unknown — never counted Monday–Friday — and it stays unlisted),
    no principal of the time for a ground that lists one (none listed, never a successor), and a
    written listing decision no inferred entry matches (the decision stands as an entry of its own).
    Reads only columns of the published blacklist row, so the CLI and the API answer alike."""
    gaps = []
    year, decision, ground = entry.get("calendar_gap_year"), entry.get("decision_no"), entry.get("ground")
    if year is not None:
        gaps.append(
            {
                "gap": "calendar_year_unpublished",
                "rule_id": "LISTING-CALENDAR-YEAR-UNPUBLISHED",
                "year": year,
                "start_date": "unknown",
                "end_date": "unknown",
                "message_zh": f"{year} 年尚无国务院办公厅公布的节假日安排：该条目的列入日期和管理期届满日期未知"
                "（不按周一至周五推算），保持 pending，不列入、不限制。",
                "message_en": f"no 国务院办公厅 holiday calendar is published for {year}: the entry's start and end "
                "dates are unknown (never counted Monday–Friday); it stays pending and restricts nothing.",
            }
        )
    if entry.get("principal_gap"):
        gaps.append(
            {
                "gap": "principal_unknown",
                "rule_id": "LISTING-PRINCIPAL-UNKNOWN",
                "message_zh": f"处罚决定 {decision} 构成 {ground} 列入情形，应同时列入单位当时的主要负责人，但处罚、"
                "事故及当时的监管对象库版本均未载明：未列入主要负责人（不以继任者替代）。",
                "message_en": f"decision {decision} grounds {ground}, which lists the unit's principal at the time, "
                "but neither the penalty, its accident nor a registry version of the time names one: no principal "
                "listed (never a successor).",
            }
        )
    if str(entry.get("role") or "").startswith("decided "):
        no = entry.get("listing_decision_no")
        gaps.append(
            {
                "gap": "decision_only",
                "rule_id": "LISTING-DECISION-DISAGREES",
                "listing_decision_no": no,
                "message_zh": f"列入决定 {no}（{ground}，处罚决定 {decision}）没有与之匹配的按处罚推定的条目："
                "以列入决定为准单独列为条目，请核对。",
                "message_en": f"listing decision {no} ({ground}, penalty {decision}) matches no entry inferred "
                "from the penalties: the decision stands as an entry of its own; please check.",
            }
        )
    return gaps


def explain_entry(con: duckdb.DuckDBPyConnection, entry_id: str) -> dict | None:
    entry = _rows(con, "SELECT * EXCLUDE (subject_code_full) FROM rules.blacklist WHERE entry_id = ?", [entry_id])
    if not entry:
        return None
    sources = _rows(
        con,
        """
        SELECT v.department, 'penalties' AS dataset, v.record_id, v.decision_no, v.authority, v.decision_date,
               v.violation_code, v.severity, v.updated_at, v.landed_at, v.is_latest, v.revoked, v.role
        FROM rules.entry_versions v WHERE v.entry_id = ? ORDER BY v.updated_at""",
        [entry_id],
    )
    accident = _rows(
        con,
        """
        SELECT a.department, 'accidents' AS dataset, a.record_id, a.accident_no, a.occurred_date, a.deaths,
               a.serious_injuries, a.direct_loss_wan, a.reported_grade, a.grade, a.grade_corrected, a.liability,
               a.reporting
        FROM rules.accidents a JOIN rules.blacklist b ON b.trigger_accident = a.accident_no
        WHERE b.entry_id = ?""",
        [entry_id],
    )
    actions = _rows(
        con,
        """
        SELECT department, 'credit_actions' AS dataset, record_id, decision_no, action_type, effective_date
        FROM rules.entry_actions WHERE entry_id = ? ORDER BY effective_date""",
        [entry_id],
    )
    rejected = _rows(
        con, "SELECT * EXCLUDE (entry_id) FROM rules.rejected_credit_actions WHERE entry_id = ?", [entry_id]
    )
    history = _rows(
        con,
        "SELECT event_date, status, cause FROM rules.entry_history WHERE entry_id = ? ORDER BY event_date, ord",
        [entry_id],
    )
    decisions = _rows(
        con,
        """
        SELECT department, 'listing_decisions' AS dataset, record_id, listing_decision_no, listing_decision_date,
               decided_start, decided_end, penalty_decision_no, authority, annulled_on, annulled_by
        FROM rules.listing_decisions WHERE entry_id = ?""",
        [entry_id],
    )
    return {
        "kind": "list_entry",
        "id": entry_id,
        "entry": entry[0],
        "gaps": entry_gaps(entry[0]),
        "listing_decisions": decisions,
        "penalty_versions": sources,
        "accident": accident,
        "credit_actions": actions,
        "rejected_credit_actions": rejected,
        "history": history,
    }


def explain_subject(con: duckdb.DuckDBPyConnection, code: str) -> dict | None:
    """A unit's score, premium factor and entries, each with the records behind it."""
    out: dict[str, Any] = {"kind": "subject", "id": code}
    found = False
    for key, table, comp in (
        ("credit_score", "credit_scores", "credit_score_components"),
        ("premium_factor", "premium_factors", "premium_factor_components"),
    ):
        if _table_exists(con, "rules", table):
            row = _rows(con, f"SELECT * FROM rules.{table} WHERE uscc = ?", [code])
            if row:
                found = True
                out[key] = row[0]
                out[f"{key}_components"] = (
                    _rows(con, f"SELECT * FROM rules.{comp} WHERE uscc = ?", [code])
                    if _table_exists(con, "rules", comp)
                    else []
                )
    entries = _rows(
        con,
        "SELECT entry_id, ground, status, start_date, end_date, decision_no FROM rules.blacklist "
        "WHERE subject_id = ? ORDER BY entry_id",
        [code],
    )
    if entries:
        found = True
        out["list_entries"] = entries
    return out if found else None


def explain(con: duckdb.DuckDBPyConnection, ident: str) -> dict:
    ident = ident.strip().upper() if not ident.startswith("E") else ident.strip()
    result = explain_entry(con, ident) if ident.startswith("E") else None
    result = result or explain_subject(con, ident)
    if result is None:
        raise UserError(
            f"找不到 {ident}：它既不是名单条目编号，也不是有评分或费率因子的统一社会信用代码。",
            f"Nothing known as {ident}: not a list entry id, nor a USCC with a score or factor.",
            exit_code=2,
        )
    return result


# ------------------------------------------------------------------ the published snapshot (API)

ENTRY_RE = re.compile(r"^[EDR][0-9a-f]{16}$")


#: parts of a unit's explanation that need a scope beyond lists:read (exchange.md §2: a part the
#: key's scopes do not cover is left out — /v1/credit and /v1/premium-factors refuse such a key)
_SCOPED_PARTS = {
    "credit_score": ("credit_scores", "credit:read"),
    "premium_factor": ("premium_factors", "premium:read"),
}


def explain_published(snap, cur, ident: str, scopes: frozenset[str] | set[str], *, row: Callable[[dict], dict]) -> dict:
    """What a served publication (the API's snapshot `snap`, a DuckDB cursor `cur` of it) holds
    about an entry, penalty, restriction or unit, limited to what `scopes` may read; each row
    through `row` (the API's: JSON values, ID numbers masked). `NotFound` when nothing is."""
    ident = ident.strip()
    out: dict[str, Any] = {"id": ident, "version": snap.version}

    def rows(feed: str, where: str, params: list, order: str = "") -> list[dict]:
        if not snap.has(feed):
            return []
        cols = set(snap.feeds[feed].columns)
        needed = set(re.findall(r'"(\w+)"', where))
        if not needed <= cols:
            return []
        res = cur.execute(f'SELECT * FROM "{feed}" WHERE {where} {order}', params)
        cols = [d[0] for d in res.description]
        return [row(dict(zip(cols, x))) for x in res.fetchall()]

    if ENTRY_RE.match(ident) and ident[0] == "E":
        entry = rows("blacklist", '"entry_id" = ?', [ident])
        if entry:
            e = entry[0]
            out.update(
                kind="list_entry",
                entry=e,
                gaps=entry_gaps(e),
                restrictions=rows("restrictions", '"entry_id" = ?', [ident], 'ORDER BY "matter"'),
                penalties=rows(
                    "penalties_public",
                    '"decision_no" = ? AND "authority_code" = ?',
                    [e.get("decision_no"), e.get("authority_code")],
                ),
                intermediary_ratings=rows("intermediary_ratings", 'list_contains("linked_entry_ids", ?)', [ident]),
                other_entries=[
                    {k: x.get(k) for k in ("entry_id", "ground", "status", "start_date", "end_date")}
                    for x in rows(
                        "blacklist",
                        '"subject_id" = ? AND "entry_id" <> ?',
                        [e.get("subject_id"), ident],
                        'ORDER BY "entry_id"',
                    )
                ],
            )
            return out
    if ENTRY_RE.match(ident) and ident[0] == "D":
        pen = rows("penalties_public", '"penalty_id" = ?', [ident])
        bans = rows("restrictions", '"penalty_id" = ?', [ident], 'ORDER BY "matter"')
        if pen or bans:
            out.update(kind="penalty", penalty=pen[0] if pen else None, restrictions=bans)
            return out
    if ENTRY_RE.match(ident) and ident[0] == "R":
        res = rows("restrictions", '"restriction_id" = ?', [ident])
        if res:
            src = res[0].get("entry_id")
            out.update(
                kind="restriction",
                restriction=res[0],
                entry=(rows("blacklist", '"entry_id" = ?', [src]) or [None])[0] if src else None,
            )
            return out
    code = normalise_code(ident)
    if is_valid_uscc(code):
        found = {
            "intermediary_ratings": rows("intermediary_ratings", '"uscc" = ?', [code]),
            "list_entries": rows("blacklist", '"subject_id" = ?', [code], 'ORDER BY "entry_id"'),
            "penalties": rows("penalties_public", '"subject_id" = ?', [code], 'ORDER BY "penalty_id"'),
        }
        # a part outside the key's scopes is never read: not even its existence may answer 200 vs 404
        scoped = {
            part: rows(feed, '"uscc" = ?', [code]) for part, (feed, scope) in _SCOPED_PARTS.items() if scope in scopes
        }
        if any(found.values()) or any(scoped.values()):
            out.update(kind="subject", id=code, **{part: (v or [None])[0] for part, v in scoped.items()}, **found)
            return out
    raise NotFound(
        "当前发布版本中没有该编号的记录",
        "nothing in the served publication is known by this id (a list entry E…, penalty D…, "
        "restriction R… or a unit's USCC)",
    )
