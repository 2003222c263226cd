"""Terminal summaries (rich): what a run fetched, staged, quarantined and published."""

from __future__ import annotations

from safecredit.run_summary import RunSummary


def print_run_summary(s: RunSummary, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table(title="Sources 数据源", show_lines=False)
    for col in ("department", "dataset", "transport", "status", "fetched", "duplicates", "note"):
        t.add_column(col, justify="right" if col in {"fetched", "duplicates"} else "left")
    for r in sorted(s.sources, key=lambda r: (r["department"], r["dataset"])):
        style = None if r["status"] == "landed" else "yellow"
        t.add_row(
            r["department"],
            r["dataset"],
            r["transport"],
            r["status"],
            str(r["rows"]),
            str(r.get("duplicates", 0)),
            "" if r["status"] == "landed" else r["message_en"],
            style=style,
        )
    con.print(t)

    t = Table(title="Staged 入库")
    for col in ("dataset", "raw versions", "staged versions", "current records", "quarantined"):
        t.add_column(col, justify="right" if col != "dataset" else "left")
    for ds, m in sorted(s.staged.items()):
        t.add_row(
            ds,
            str(m.get("raw", "")),
            str(m.get("staged_versions", "")),
            str(m.get("current", "")),
            str(m.get("quarantined", "")),
        )
    con.print(t)
    held = [h for m in s.staged.values() for h in m.get("held_back", [])]
    for ds, m in sorted(s.staged.items()):
        for h in m.get("held_back", []):
            con.print(
                f"[yellow]Held back 暂缓入库[/yellow] {h['department']}/{ds} batch {h['fetch_id']}: "
                f"{h['reason_zh']} / {h['reason_en']}"
            )
        if m.get("unknown_fields"):
            con.print(f"[yellow]Unknown fields 未知字段[/yellow] in {ds}: {', '.join(m['unknown_fields'])}")
    if held:
        con.print(
            "  Fix the contract or ask the department, then `safecredit replay` re-stages them "
            "from the raw landing. 修复后运行 `safecredit replay` 重新入库。"
        )
    if s.subjects:
        con.print(
            f"Subject resolution 主体识别: {s.subjects.get('resolution')}; unresolved "
            f"{s.subjects.get('unresolved')}; decisions reported twice {s.subjects.get('duplicate_decisions')}"
        )

    if s.blacklist:
        con.print(
            f"Blacklist 严重失信主体名单 (as of {s.blacklist.get('as_of')}, policy "
            f"{s.blacklist.get('policy_version')}): by status {s.blacklist.get('entries_by_status')}, "
            f"by ground {s.blacklist.get('entries_by_ground')}"
        )
    d = s.listing_decisions
    if d:
        con.print(
            f"Listing decisions 列入决定: {d.get('decided')} entries decided, {d.get('inferred')} inferred, "
            f"{d.get('candidates')} in the authorities' queues; {d.get('out_of_scope')} triggers outside "
            f"their regime's scope"
        )
        for title, key, count in (
            (
                "Decisions that disagree with the computed list 列入决定与计算名单不一致",
                "disagreements",
                "disagreements_count",
            ),
            ("Overdue: no listing decision after notice + grace 逾期未作列入决定", "overdue", "overdue_count"),
        ):
            if d.get(count):
                con.print(f"[yellow]{title}: {d[count]}[/yellow]")
                for row in d.get(key, []):
                    con.print(f"  {row.get('message_zh')} / {row.get('message_en')}")
    t = Table(title="Feeds 发布")
    t.add_column("feed")
    for col in ("rows", "added", "modified", "removed"):
        t.add_column(col, justify="right")
    for feed, rows in sorted(s.feeds.items()):
        d = s.feed_deltas.get(feed, {})
        t.add_row(feed, str(rows), *(str(d.get(k, "")) for k in ("ADD", "MOD", "DEL")))
    con.print(t)
    if s.steps:  # the slowest steps first: where the night's time went
        slow = sorted(s.steps.items(), key=lambda kv: -kv[1])[:8]
        total = sum(s.steps.values())
        con.print(f"Steps 步骤耗时 ({total:.0f} s in all): " + ", ".join(f"{k} {v:.1f} s" for k, v in slow))
    if s.published:
        con.print(f"[green]Published version {s.version}[/green] → {s.exports}")
    elif s.ok:
        con.print(f"[red]Publication blocked 发布被阻止[/red]: {s.reasons}")
    else:
        con.print(f"[red]Run failed 运行失败[/red]; details in {s.log}")


def _records_table(title: str, rows: list[dict]):
    from rich.table import Table

    t = Table(title=title)
    for c in rows[0]:
        t.add_column(str(c))
    for r in rows:
        t.add_row(*[str(v) for v in r.values()])
    return t


def print_explanation(result: dict, console=None) -> None:
    """A readable view of `safecredit.explain.explain`'s answer."""
    from rich.console import Console

    con = console or Console()
    if result["kind"] == "list_entry":
        e = result["entry"]
        con.print(
            f"[bold]{e['entry_id']}[/bold] {e['ground']} {e.get('ground_name') or ''} — {e['name']} "
            f"({e['subject_type']} {e['subject_code']}) status [bold]{e['status']}[/bold] "
            f"{e['start_date']} → {e['end_date']} (policy {e['policy_version']})"
        )
        for gap in result.get("gaps", []):
            con.print(f"[yellow]{gap['rule_id']}[/yellow] {gap['message_zh']}\n  {gap['message_en']}")
        sections = [
            ("Listing decision 列入决定", result.get("listing_decisions", [])),
            ("Penalty versions 处罚决定（各版本）", result["penalty_versions"]),
            ("Accident 事故", result["accident"]),
            ("Credit actions 信用修复/异议", result["credit_actions"]),
            ("Refused credit actions 不予采纳", result["rejected_credit_actions"]),
            ("History 状态变化", result["history"]),
        ]
    else:
        sections = []
        for key, value in result.items():
            if isinstance(value, dict):
                con.print(f"[bold]{key}[/bold]: " + ", ".join(f"{k}={v}" for k, v in value.items()))
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                sections.append((key, value))
    for title, rows in sections:
        if rows:
            con.print(_records_table(title, rows))
