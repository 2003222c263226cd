"""The publication report's section on listing decisions (rules.md §3): what the deciding
authorities' written decisions say against the computed list — decisions that disagree with it, and
inferred entries overdue for a decision — read from the warehouse the version was published from.
"""

from __future__ import annotations

SECTION = ("decisions", "列入决定与待决定事项", "Listing decisions and overdue entries")
SHOWN = 30  # rows of each table on the page; the warehouse tables hold all


def decisions_section(con, esc, card) -> str:
    """HTML of the section; `esc` and `card` are the report's escaping and card helpers."""
    from safecredit.run_summary import decisions_part

    d = decisions_part(con, limit=SHOWN)
    sid, zh, en = SECTION
    out = [f'<section id="{sid}"><h2>{zh} · {en}</h2><div class="grid">']
    summary = (
        f"已决定 decided {d['decided']:,} · 推定 inferred {d['inferred']:,} · 待办 in the queues "
        f"{d['candidates']:,} · 超出名单范围未列入 outside their regime's scope {d['out_of_scope']:,}"
    )
    for key, count, title_zh, title_en, cols in (
        (
            "disagreements",
            "disagreements_count",
            "与计算名单不一致的列入决定",
            "decisions that disagree with the computed list",
            ("decision_no", "ground", "penalty_decision_no"),
        ),
        (
            "overdue",
            "overdue_count",
            "逾期未作列入决定",
            "overdue: no decision after notice + grace",
            ("decision_no", "ground", "decision_due_date"),
        ),
    ):
        rows = d[key]
        t = [
            "<table><tr>"
            + "".join(f"<th>{esc(c)}</th>" for c in (*cols, "说明 message"))
            + "</tr>"
            + "".join(
                "<tr>"
                + "".join(f"<td>{esc(r.get(c) or '')}</td>" for c in cols)
                + f"<td>{esc(r.get('message_zh'))}<br><span class=note>{esc(r.get('message_en'))}</span></td></tr>"
                for r in rows
            )
            + "</table>"
        ]
        note = f"{d[count]:,} 条 entries" + (f"（显示前 {SHOWN} 条 first {SHOWN} shown）" if d[count] > SHOWN else "")
        out.append(card(title_zh, title_en, "".join(t) if rows else "—", note))
    out.append(f'</div><p class="note">{esc(summary)}</p></section>')
    return "".join(out)
