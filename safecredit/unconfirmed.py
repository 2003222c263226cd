"""Policy values not confirmed against their legal text (rules.md §4: listed as such in
docs/FEEDS.md and in every publication report). The values come from `policy.unconfirmed_values`;
this module only lays them out, as Markdown for the docs and as an HTML section for the report."""

from __future__ import annotations

from html import escape

TITLE_ZH, TITLE_EN = "未经原文核实的政策取值", "Policy values not confirmed against their text"
INTRO = (
    "每项取值均注明来源；以下各项标记为 `unconfirmed: true`：取值或条款序号未能与所引文件原文核对，"
    "按可配置默认值使用。 Every value cites its source; these are marked `unconfirmed: true` — the value "
    "or the article could not be checked against the cited text and is used as a configurable default."
)


def _cell(s: str) -> str:
    return s.replace("|", "/").replace("\n", " ")


def unconfirmed_markdown(items: list[dict], policy_version: str) -> str:
    lines = [f"## {TITLE_ZH} · {TITLE_EN}", "", INTRO, "", f"Policy `{policy_version}`: {len(items)} entries.", ""]
    lines += ["| where | value | basis | note |", "|---|---|---|---|"]
    for it in items:
        lines.append(f"| `{it['where']}` | {_cell(it['value'])} | {_cell(it['basis'])} | {_cell(it['note'])} |")
    return "\n".join(lines) + "\n"


def unconfirmed_html(items: list[dict], policy_version: str) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(it['where'])}</code></td><td>{escape(it['value'])}</td>"
        f"<td>{escape(it['basis'])}</td><td>{escape(it['note'])}</td></tr>"
        for it in items
    )
    return (
        f'<section id="unconfirmed"><h2>{TITLE_ZH} · {TITLE_EN}</h2>'
        f'<div class="card"><p class="note">{escape(INTRO)} 政策版本 policy <code>{escape(policy_version)}</code>'
        f"：{len(items)} 项 entries.</p>"
        f"<table><tr><th>位置 where</th><th>取值 value</th><th>依据 basis</th><th>说明 note</th></tr>{rows}</table>"
        "</div></section>"
    )
