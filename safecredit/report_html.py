"""The publication report (发布报告): one self-contained HTML page per published version.

Listings over time by ground, industry and region; credit score, grade and premium factor
distributions; quarantine by source and rule; freshness per source. Charts are inline SVG built
here (no scripts, no CDN, no fonts to fetch), so the page renders the same offline, in a browser,
a mail client or headless Chromium. Labels are Chinese and English.

`render_report(con, raw_root, version, as_of, policy_version)` reads the warehouse the publication
was made from; `write_report(exports_root, version, html)` writes `<exports>/reports/<version>.html`
(the location the API's `/report` serves for the version it serves).
"""

from __future__ import annotations

import html as _html
import math
import os
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

from safecredit.report_decisions import SECTION as DECISIONS_SECTION
from safecredit.report_decisions import decisions_section

# One distinctive colour per chart (its first series / its bars): the test counts these pixels in a
# headless-Chromium screenshot to check each chart drew.
SIGNATURES = {
    "listings-ground": "#d62728",
    "listings-industry": "#2ca02c",
    "listings-region": "#9467bd",
    "score-hist": "#1f77b4",
    "grade-bars": "#17becf",
    "premium-hist": "#ff7f0e",
    "quarantine-source": "#8c564b",
    "quarantine-rule": "#e377c2",
    "freshness": "#bcbd22",
}
# the rest of a stacked chart's series (shared; the first colour of each chart is its own)
_PALETTE = ["#4e79a7", "#f2b447", "#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac"]
_STALE = "#b22222"
_OTHER = "#c7c7c7"

SECTIONS = [
    ("listings", "黑名单列入趋势", "Listings over time"),
    ("distributions", "信用评分与费率浮动系数分布", "Score and premium factor distributions"),
    ("quarantine", "隔离记录", "Quarantine"),
    ("freshness", "数据源新鲜度", "Freshness per source"),
    DECISIONS_SECTION,
]

# GB/T 4754-2017 sections (门类), by the letter an industry code starts with
INDUSTRY_SECTIONS = {
    "A": ("农林牧渔业", "agriculture, forestry, fishing"),
    "B": ("采矿业", "mining"),
    "C": ("制造业", "manufacturing"),
    "D": ("电力热力燃气及水", "utilities"),
    "E": ("建筑业", "construction"),
    "F": ("批发和零售业", "wholesale and retail"),
    "G": ("交通运输仓储邮政", "transport and storage"),
    "H": ("住宿和餐饮业", "hotels and catering"),
    "I": ("信息技术服务", "information technology"),
    "J": ("金融业", "finance"),
    "K": ("房地产业", "real estate"),
    "L": ("租赁和商务服务", "leasing and business services"),
    "M": ("科学研究和技术服务", "research and technical services"),
    "N": ("水利环境公共设施", "water, environment, public facilities"),
    "O": ("居民服务修理", "household services and repair"),
    "P": ("教育", "education"),
    "Q": ("卫生和社会工作", "health and social work"),
    "R": ("文化体育娱乐", "culture, sports, entertainment"),
    "S": ("公共管理社会组织", "public administration"),
    "T": ("国际组织", "international organisations"),
}

FONT = "'Noto Sans CJK SC','Noto Sans SC','WenQuanYi Zen Hei','Source Han Sans SC','Microsoft YaHei',sans-serif"


def esc(s) -> str:
    return _html.escape("" if s is None else str(s), quote=True)


def _fmt(v: float) -> str:
    if v is None:
        return "—"
    if abs(v - round(v)) < 1e-9:
        return f"{int(round(v)):,}"
    return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.1f}"


def _clip(s: str, units: int) -> str:
    """Cut `s` to about `units` half-width characters (a CJK character counts 2), adding "…"."""
    out, used = [], 0
    for ch in s:
        u = 2 if ord(ch) > 0x2E80 else 1
        if used + u > units:
            return "".join(out).rstrip() + "…"
        out.append(ch)
        used += u
    return s


def _nice_max(v: float) -> tuple[float, float]:
    """An axis maximum ≥ v and a tick step (1, 2, 5 × 10^k), about 4–6 ticks."""
    if v <= 0:
        return 1.0, 0.25 if v == 0 else 1.0
    raw = v / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if step >= 1:
        step = max(1.0, round(step))
    return math.ceil(v / step) * step, step


# --------------------------------------------------------------------------- SVG builders


def _svg_open(chart_id: str, w: int, h: int, title: str) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{esc(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{esc(title)}" '
        f'font-family="{esc(FONT)}" font-size="11">',
        f"<title>{esc(title)}</title>",
    ]


def _empty(chart_id: str, w: int, h: int, title: str) -> str:
    out = _svg_open(chart_id, w, h, title)
    out.append(f'<rect x="0.5" y="0.5" width="{w - 1}" height="{h - 1}" fill="#fafafa" stroke="#ddd"/>')
    out.append(
        f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle" fill="#888" font-size="13">无数据 · no data</text></svg>'
    )
    return "\n".join(out)


def _y_axis(out: list[str], x0: float, x1: float, y0: float, y1: float, ymax: float, step: float) -> None:
    """Horizontal grid lines and labels; y0 is the bottom (value 0), y1 the top (value ymax)."""
    n = int(round(ymax / step))
    for i in range(n + 1):
        v = i * step
        y = y0 - (y0 - y1) * v / ymax
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x0 - 5}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(v)}</text>')
    out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#888"/>')


def stacked_area_chart(
    chart_id: str,
    title: str,
    x_labels: list[str],
    series: list[tuple[str, list[float]]],
    colors: list[str],
    w: int = 600,
    h: int = 290,
    legend_w: int = 170,
) -> str:
    """Series stacked bottom-up in the order given (the first at the bottom); legend on the right."""
    if not x_labels or not series or not any(any(v for v in s) for _, s in series):
        return _empty(chart_id, w, h, title)
    left, right, top, bottom = 48, legend_w, 12, 34
    legend_units = (legend_w - 60) // 6
    x0, x1, y1, y0 = left, w - right, top, h - bottom
    n = len(x_labels)
    totals = [sum(s[i] for _, s in series) for i in range(n)]
    ymax, step = _nice_max(max(totals))
    out = _svg_open(chart_id, w, h, title)
    _y_axis(out, x0, x1, y0, y1, ymax, step)

    def X(i):
        return x0 + (x1 - x0) * (i / (n - 1) if n > 1 else 0.5)

    def Y(v):
        return y0 - (y0 - y1) * v / ymax

    base = [0.0] * n
    for k, (name, vals) in enumerate(series):
        top_line = [base[i] + vals[i] for i in range(n)]
        pts = [f"{X(i):.1f},{Y(top_line[i]):.1f}" for i in range(n)]
        pts += [f"{X(i):.1f},{Y(base[i]):.1f}" for i in reversed(range(n))]
        col = colors[k % len(colors)]
        out.append(
            f'<polygon points="{" ".join(pts)}" fill="{col}" stroke="#fff" stroke-width="0.6">'
            f"<title>{esc(name)}</title></polygon>"
        )
        base = top_line
    every = max(1, math.ceil(n / 8))
    for i in range(0, n, every):
        out.append(f'<line x1="{X(i):.1f}" y1="{y0}" x2="{X(i):.1f}" y2="{y0 + 4}" stroke="#888"/>')
        out.append(f'<text x="{X(i):.1f}" y="{y0 + 16}" text-anchor="middle" fill="#555">{esc(x_labels[i])}</text>')
    # legend: top of the stack first
    ly = top + 4
    for k in reversed(range(len(series))):
        name, vals = series[k]
        col = colors[k % len(colors)]
        out.append(f'<rect x="{x1 + 12}" y="{ly}" width="11" height="11" fill="{col}"/>')
        out.append(
            f'<text x="{x1 + 28}" y="{ly + 10}" fill="#333">{esc(_clip(name, legend_units))} ({_fmt(vals[-1])})</text>'
        )
        ly += 17
    out.append("</svg>")
    return "\n".join(out)


def hbar_chart(
    chart_id: str,
    title: str,
    items: list[tuple[str, float]],
    color: str,
    w: int = 600,
    label_w: int = 200,
    bar_h: int = 18,
    value_fmt=_fmt,
    colors: list[str] | None = None,
    threshold: tuple[float, str] | None = None,
    unit: str = "",
    min_bar: float = 0.0,
) -> str:
    """Horizontal bars, one per (label, value), in the order given."""
    if not items:
        return _empty(chart_id, w, 120, title)
    gap, top, bottom = 6, 8, 26
    h = top + bottom + len(items) * (bar_h + gap)
    x0, x1 = label_w, w - 70
    vmax = max([v for _, v in items] + ([threshold[0]] if threshold else []))
    xmax, step = _nice_max(vmax)
    out = _svg_open(chart_id, w, h, title)
    nt = int(round(xmax / step))
    for i in range(nt + 1):
        x = x0 + (x1 - x0) * i * step / xmax
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="#eee"/>')
        out.append(
            f'<text x="{x:.1f}" y="{h - bottom + 14}" text-anchor="middle" fill="#666">'
            f"{_fmt(i * step)}{esc(unit) if i == nt else ''}</text>"
        )
    for k, (label, v) in enumerate(items):
        y = top + k * (bar_h + gap)
        bw = max(min_bar, (x1 - x0) * v / xmax)
        col = colors[k] if colors else color
        lab = _clip(label, (label_w - 10) // 6)
        out.append(f'<text x="{x0 - 6}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" fill="#333">{esc(lab)}</text>')
        out.append(
            f'<rect x="{x0}" y="{y}" width="{bw:.1f}" height="{bar_h}" fill="{col}">'
            f"<title>{esc(label)}: {esc(value_fmt(v))}</title></rect>"
        )
        out.append(f'<text x="{x0 + bw + 4:.1f}" y="{y + bar_h * 0.72:.1f}" fill="#333">{esc(value_fmt(v))}</text>')
    if threshold:
        tx = x0 + (x1 - x0) * threshold[0] / xmax
        out.append(
            f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{h - bottom}" stroke="{_STALE}" '
            f'stroke-dasharray="4 3" stroke-width="1.5"/>'
        )
        out.append(f'<text x="{tx + 3:.1f}" y="{top + 6}" fill="{_STALE}" font-size="10">{esc(threshold[1])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def vbar_chart(
    chart_id: str,
    title: str,
    items: list[tuple[str, float]],
    color: str,
    w: int = 600,
    h: int = 250,
    colors: list[str] | None = None,
) -> str:
    """Vertical bars (categories such as grades) with values above."""
    if not items or not any(v for _, v in items):
        return _empty(chart_id, w, h, title)
    left, right, top, bottom = 48, 12, 16, 34
    x0, x1, y1, y0 = left, w - right, top, h - bottom
    ymax, step = _nice_max(max(v for _, v in items))
    out = _svg_open(chart_id, w, h, title)
    _y_axis(out, x0, x1, y0, y1, ymax, step)
    slot = (x1 - x0) / len(items)
    bw = slot * 0.62
    for k, (label, v) in enumerate(items):
        x = x0 + k * slot + (slot - bw) / 2
        bh = (y0 - y1) * v / ymax
        col = colors[k] if colors else color
        out.append(
            f'<rect x="{x:.1f}" y="{y0 - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" fill="{col}">'
            f"<title>{esc(label)}: {_fmt(v)}</title></rect>"
        )
        out.append(
            f'<text x="{x + bw / 2:.1f}" y="{y0 - bh - 4:.1f}" text-anchor="middle" fill="#333">{_fmt(v)}</text>'
        )
        out.append(f'<text x="{x + bw / 2:.1f}" y="{y0 + 16}" text-anchor="middle" fill="#333">{esc(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def histogram(
    chart_id: str,
    title: str,
    values: list[float],
    color: str,
    bins: int = 20,
    w: int = 600,
    h: int = 250,
    markers: list[tuple[float, str]] = (),
) -> str:
    """Counts of `values` in `bins` equal-width bins over [min, max]; optional vertical markers."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return _empty(chart_id, w, h, title)
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, int((v - lo) / width))] += 1
    left, right, top, bottom = 48, 12, 14, 34
    x0, x1, y1, y0 = left, w - right, top, h - bottom
    ymax, step = _nice_max(max(counts))
    out = _svg_open(chart_id, w, h, title)
    _y_axis(out, x0, x1, y0, y1, ymax, step)
    bw = (x1 - x0) / bins

    def X(v):
        return x0 + (x1 - x0) * (v - lo) / (hi - lo)

    for i, c in enumerate(counts):
        bh = (y0 - y1) * c / ymax
        a, b = lo + i * width, lo + (i + 1) * width
        out.append(
            f'<rect x="{x0 + i * bw + 0.5:.1f}" y="{y0 - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" '
            f'fill="{color}"><title>[{a:.2f}, {b:.2f}): {c}</title></rect>'
        )
    for i in range(0, bins + 1, max(1, bins // 5)):
        v = lo + i * width
        out.append(f'<text x="{X(v):.1f}" y="{y0 + 16}" text-anchor="middle" fill="#555">{_tick(v, width)}</text>')
    for mv, ml in markers:
        if lo <= mv <= hi:
            out.append(
                f'<line x1="{X(mv):.1f}" y1="{y1}" x2="{X(mv):.1f}" y2="{y0}" stroke="#333" stroke-dasharray="3 3"/>'
            )
            out.append(f'<text x="{X(mv) + 3:.1f}" y="{y1 + 10}" fill="#333" font-size="10">{esc(ml)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _age(days: float) -> str:
    return f"{days * 24:.1f} h" if days < 1 else f"{days:.1f} d"


def _tick(v: float, width: float) -> str:
    if width >= 1:
        return f"{v:.0f}"
    if width >= 0.1:
        return f"{v:.1f}"
    return f"{v:.2f}"


# --------------------------------------------------------------------------- data


def _tables(con) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def _month_ends(as_of: date, months: int) -> list[date]:
    out = []
    y, m = as_of.year, as_of.month
    for _ in range(months):
        # last day of (y, m)
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append(min(as_of, date.fromordinal(date(ny, nm, 1).toordinal() - 1)))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return sorted(set(out))


def listings_over_time(con, as_of: date, months: int = 36, top: int = 6) -> dict:
    """Entries in force at each month end (the last point is as_of), by ground, industry, region.

    In force on day d: start_date ≤ d < end_date, not repaired by d; revoked entries and upheld
    objections apply backwards (never in force)."""
    tables = _tables(con)
    if "rules.blacklist" not in tables:
        return {}
    cols = _columns(con, "rules.blacklist")
    first = con.execute("SELECT min(start_date) FROM rules.blacklist").fetchone()[0]
    if first is None:
        return {}
    span = (as_of.year - first.year) * 12 + as_of.month - first.month + 1
    ends = _month_ends(as_of, max(2, min(months, span)))
    repaired = "AND NOT (b.repair_date IS NOT NULL AND b.repair_date <= d.d)" if "repair_date" in cols else ""
    has_reg = "subjects.registry" in tables
    reg = (
        "(SELECT uscc, arg_max(industry_code, updated_at) AS industry_code, "
        "arg_max(region_code, updated_at) AS region_code FROM subjects.registry GROUP BY uscc)"
        if has_reg
        else "(SELECT NULL::VARCHAR AS uscc, NULL::VARCHAR AS industry_code, NULL::VARCHAR AS region_code)"
    )
    name = "b.ground_name" if "ground_name" in cols else "NULL"
    rows = con.execute(
        f"""
        WITH d AS (SELECT unnest(?::DATE[]) AS d),
        b AS (
            SELECT b.*, {name} AS gname, r.industry_code, r.region_code
            FROM rules.blacklist b LEFT JOIN {reg} r
              ON b.subject_type <> 'person' AND r.uscc = b.subject_code
            WHERE b.status NOT IN ('revoked', 'objection_upheld')
        )
        SELECT d.d, b.subject_type, b.ground, any_value(b.gname) AS gname,
               upper(left(b.industry_code, 1)) AS section, b.region_code, count(*) AS n
        FROM d JOIN b ON b.start_date <= d.d AND (b.end_date IS NULL OR b.end_date > d.d) {repaired}
        GROUP BY ALL
    """,
        [ends],
    ).fetchall()
    idx = {d: i for i, d in enumerate(ends)}

    def build(key_fn) -> list[tuple[str, list[float]]]:
        acc: dict[str, list[float]] = {}
        for r in rows:
            k = key_fn(r)
            acc.setdefault(k, [0.0] * len(ends))[idx[r[0]]] += r[6]
        order = sorted(acc, key=lambda k: (-acc[k][-1], -sum(acc[k]), k))
        keep, rest = order[:top], order[top:]
        series = [(k, acc[k]) for k in keep]
        if rest:
            series.append((f"其他 other ({len(rest)})", [sum(acc[k][i] for k in rest) for i in range(len(ends))]))
        return series

    def ground(r):
        return f"{r[2]} {r[3]}" if r[3] else str(r[2])

    def industry(r):
        if r[1] == "person":
            return "自然人 persons"
        if not r[4]:
            return "未知 unknown"
        zh, en = INDUSTRY_SECTIONS.get(r[4], ("", ""))
        return f"{r[4]} {zh}" if zh else r[4]

    def region(r):
        if r[1] == "person":
            return "自然人 persons"
        return r[5] or "未知 unknown"

    return {
        "x": [d.strftime("%Y-%m") for d in ends],
        "ends": ends,
        "ground": build(ground),
        "industry": build(industry),
        "region": build(region),
    }


def _col(con, table: str, col: str) -> list:
    return [r[0] for r in con.execute(f"SELECT {col} FROM {table} WHERE {col} IS NOT NULL").fetchall()]


def distributions(con) -> dict:
    tables = _tables(con)
    out: dict = {"scores": [], "grades": [], "factors": []}
    if "rules.credit_scores" in tables:
        cols = _columns(con, "rules.credit_scores")
        if "score" in cols:
            out["scores"] = [float(v) for v in _col(con, "rules.credit_scores", "score")]
        if "grade" in cols:
            out["grades"] = con.execute(
                "SELECT grade, count(*) FROM rules.credit_scores WHERE grade IS NOT NULL GROUP BY 1 ORDER BY 1"
            ).fetchall()
    if "rules.premium_factors" in tables and "factor" in _columns(con, "rules.premium_factors"):
        out["factors"] = [float(v) for v in _col(con, "rules.premium_factors", "factor")]
    return out


def quarantine(con) -> dict:
    tables = _tables(con)
    out: dict = {"by_source": [], "by_rule": [], "rules": [], "held": [], "total": 0}
    if "quality.violations" in tables:
        q = "FROM quality.violations WHERE severity = 'quarantine' OR severity IS NULL"
        out["total"] = con.execute(f"SELECT count(*) {q}").fetchone()[0]
        out["by_source"] = con.execute(
            f"SELECT department || '/' || dataset, count(*) {q} GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        out["rules"] = con.execute(
            f"SELECT rule_id, count(*), any_value(message_zh), any_value(message_en), "
            f"string_agg(DISTINCT department || '/' || dataset, ', ') {q} GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        out["by_rule"] = [(r[0], r[1]) for r in out["rules"]]
        out["warnings"] = con.execute(
            "SELECT count(*) FROM quality.violations WHERE severity IS NOT NULL AND severity <> 'quarantine'"
        ).fetchone()[0]
    if "quality.batches" in tables:
        out["held"] = con.execute(
            "SELECT department, dataset, fetch_id, reason_zh, reason_en FROM quality.batches WHERE held ORDER BY ALL"
        ).fetchall()
    return out


def feed_rows(con) -> list[tuple[str, int]]:
    from safecredit.publish import FEEDS

    tables = _tables(con)
    return [(f, con.execute(f"SELECT count(*) FROM rules.{f}").fetchone()[0]) for f in FEEDS if f"rules.{f}" in tables]


# --------------------------------------------------------------------------- page

CSS = """
*{box-sizing:border-box}
body{margin:0;padding:18px 22px;font-family:%(font)s;color:#222;background:#f4f5f7;font-size:13px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:18px 0 8px;padding-bottom:4px;border-bottom:2px solid #d0d4da}
h3{font-size:13px;margin:0 0 6px;color:#333}
.meta{color:#555;margin-bottom:10px}
.meta code{background:#e8eaed;padding:1px 5px;border-radius:3px}
.kpis{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.kpi{background:#fff;border:1px solid #dde;border-radius:6px;padding:6px 12px;min-width:120px}
.kpi b{display:block;font-size:18px}
.kpi span{color:#666;font-size:11px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.grid.three{grid-template-columns:1fr 1fr 1fr}
.wide{grid-column:1/-1}
.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:10px 12px;overflow:hidden}
.card svg{max-width:100%%;height:auto;display:block}
.note{color:#666;font-size:11px;margin:4px 0 0}
table{border-collapse:collapse;width:100%%;font-size:11.5px}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:%(stale)s;font-weight:bold}
.ok{color:#2e7d32}
footer{color:#888;font-size:11px;margin-top:14px}
""" % {"font": FONT, "stale": _STALE}  # noqa: UP031 — CSS braces make %-formatting the readable choice


def _card(title_zh: str, title_en: str, body: str, note: str = "", cls: str = "card") -> str:
    """A titled box in a grid (cls "card wide" spans the row)."""
    return (
        f'<div class="{cls}"><h3>{esc(title_zh)} · {esc(title_en)}</h3>{body}'
        + (f'<p class="note">{note}</p>' if note else "")
        + "</div>"
    )


def _kpi(value, zh: str, en: str) -> str:
    return f'<div class="kpi"><b>{esc(value)}</b><span>{esc(zh)} · {esc(en)}</span></div>'


def render_report(
    con,
    raw_root,
    version: str,
    as_of: date,
    policy_version: str,
    *,
    generated_at: datetime | None = None,
    max_stale_days: float = 7.0,
    months: int = 36,
    unconfirmed: list[dict] | None = None,
) -> str:
    """The HTML page for one published version, from the warehouse it was published from.
    `unconfirmed`: the policy's values not confirmed against their text (policy.unconfirmed_values),
    listed in a section of their own (rules.md §4)."""
    now = generated_at or datetime.now(timezone.utc)
    lt = listings_over_time(con, as_of, months=months)
    dist = distributions(con)
    quar = quarantine(con)
    from safecredit.freshness import since_last_fetch

    fresh = since_last_fetch(raw_root, now)
    rows = feed_rows(con)

    in_force = 0
    if lt:
        in_force = int(sum(s[-1] for _, s in lt["ground"]))
    scores, factors = dist["scores"], dist["factors"]

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    stale = [f for f in fresh if f["age_days"] is None or f["age_days"] > max_stale_days]
    not_landed = [f for f in fresh if f.get("last_status") not in (None, "landed")]

    parts: list[str] = []
    a = parts.append
    a("<!DOCTYPE html>")
    a('<html lang="zh-CN"><head><meta charset="utf-8">')
    a('<meta name="viewport" content="width=device-width, initial-scale=1">')
    a(f"<title>发布报告 Publication report · {esc(version)}</title>")
    a(f"<style>{CSS}</style></head><body>")
    a(f"<h1>发布报告 · Publication report <code>{esc(version)}</code></h1>")
    a(
        f'<div class="meta">数据日期 as of <code>{esc(as_of)}</code>'
        f" · 政策版本 policy <code>{esc(policy_version)}</code>"
        f" · 生成于 generated <code>{esc(now.strftime('%Y-%m-%d %H:%M:%S %Z'))}</code></div>"
    )
    a('<div class="kpis">')
    a(_kpi(f"{in_force:,}", "当前在列", "listings in force"))
    for feed, n in rows:
        a(_kpi(f"{n:,}", "行", f"rows · {feed}"))
    a(_kpi(_fmt(mean(scores)) if scores else "—", "平均信用分", "mean credit score"))
    a(_kpi(f"{mean(factors):.3f}" if factors else "—", "平均浮动系数", "mean premium factor"))
    a(_kpi(f"{quar['total']:,}", "隔离记录", "quarantined records"))
    a(_kpi(f"{len(quar['held'])}", "暂缓批次", "held-back batches"))
    a(_kpi(f"{len(fresh) - len(stale)}/{len(fresh)}", "数据源及时", "sources fresh"))
    a("</div>")

    # ---- listings over time
    sid, zh, en = SECTIONS[0]
    a(f'<section id="{sid}"><h2>{zh} · {en}</h2><div class="grid">')
    x = lt.get("x", [])
    note = (
        f"每月末在列条目数（最后一点为数据日期）；撤销与异议成立的条目按从未列入计。"
        f" Entries in force at each month end (last point: as of); revoked entries and upheld objections "
        f"count as never listed. Legend: in force as of ({esc(as_of)})."
    )
    for key, zh_t, en_t in (
        ("ground", "按列入事由", "by ground"),
        ("industry", "按行业门类", "by industry (GB/T 4754 section)"),
        ("region", "按行政区划", "by region code"),
    ):
        cid = f"listings-{key}"
        colors = [SIGNATURES[cid]] + _PALETTE
        series = lt.get(key, [])
        colors = [
            (_OTHER if name.startswith("其他 other") else colors[i]) for i, (name, _) in enumerate(series)
        ] or colors
        wide = key == "ground"
        chart = stacked_area_chart(
            cid, f"{zh} {zh_t} / {en} {en_t}", x, series, colors, w=1220 if wide else 600, legend_w=400 if wide else 190
        )
        a(_card(zh_t, en_t, chart, note if wide else "", cls="card wide" if wide else "card"))
    a("</div></section>")

    # ---- distributions
    sid, zh, en = SECTIONS[1]
    a(f'<section id="{sid}"><h2>{zh} · {en}</h2><div class="grid three">')
    sc_note = (
        (
            f"{len(scores):,} 家单位 units; 均值 mean {_fmt(mean(scores))}; "
            f"min {_fmt(min(scores))}, max {_fmt(max(scores))}"
        )
        if scores
        else ""
    )
    a(
        _card(
            "信用评分",
            "credit score",
            histogram("score-hist", "credit score 信用评分", scores, SIGNATURES["score-hist"], bins=20, w=400, h=250),
            sc_note,
        )
    )
    a(
        _card(
            "信用等级",
            "credit grade",
            vbar_chart(
                "grade-bars",
                "credit grade 信用等级",
                [(str(g), n) for g, n in dist["grades"]],
                SIGNATURES["grade-bars"],
                w=400,
                h=250,
            ),
        )
    )
    pf_note = ""
    if factors:
        up = sum(1 for f in factors if f > 1 + 1e-9)
        down = sum(1 for f in factors if f < 1 - 1e-9)
        pf_note = (
            f"{len(factors):,} 家单位 units; 上浮 above 1: {up:,}; 下浮 below 1: {down:,}; "
            f"均值 mean {mean(factors):.3f}"
        )
    distinct = sorted({round(f, 4) for f in factors})
    if factors and len(distinct) <= 12:  # a handful of levels: one bar per level
        counts = {v: 0 for v in distinct}
        for f in factors:
            counts[round(f, 4)] += 1
        chart = vbar_chart(
            "premium-hist",
            "premium factor 费率浮动系数",
            [(f"{v:g}", n) for v, n in counts.items()],
            SIGNATURES["premium-hist"],
            w=400,
            h=250,
        )
    else:
        chart = histogram(
            "premium-hist",
            "premium factor 费率浮动系数",
            factors,
            SIGNATURES["premium-hist"],
            bins=20,
            w=400,
            h=250,
            markers=[(1.0, "1.0 基准 base")],
        )
    a(_card("安责险费率浮动系数", "premium factor", chart, pf_note))
    a("</div></section>")

    # ---- quarantine
    sid, zh, en = SECTIONS[2]
    a(f'<section id="{sid}"><h2>{zh} · {en}</h2><div class="grid">')
    a(
        _card(
            "按数据源",
            "by source (department/dataset)",
            hbar_chart(
                "quarantine-source",
                "quarantine by source",
                quar["by_source"],
                SIGNATURES["quarantine-source"],
                label_w=170,
            ),
            f"隔离 quarantined {quar['total']:,}; 警告 warnings {quar.get('warnings', 0):,}",
        )
    )
    a(
        _card(
            "按规则",
            "by rule",
            hbar_chart(
                "quarantine-rule",
                "quarantine by rule",
                quar["by_rule"][:15],
                SIGNATURES["quarantine-rule"],
                label_w=230,
            ),
        )
    )
    a("</div>")
    if quar["rules"]:
        t = ["<table><tr><th>规则 rule</th><th>数据源 sources</th><th>记录 records</th><th>说明 message</th></tr>"]
        for rule, n, mzh, men, srcs in quar["rules"][:20]:
            t.append(
                f"<tr><td><code>{esc(rule)}</code></td><td>{esc(srcs)}</td><td class=num>{n:,}</td>"
                f"<td>{esc(mzh)}<br><span class=note>{esc(men)}</span></td></tr>"
            )
        t.append("</table>")
        a('<div class="card" style="margin-top:12px">' + "".join(t) + "</div>")
    if quar["held"]:
        t = ["<table><tr><th>数据源 source</th><th>批次 batch</th><th>原因 reason</th></tr>"]
        for d, ds, fid, rzh, ren in quar["held"]:
            t.append(
                f"<tr><td>{esc(d)}/{esc(ds)}</td><td><code>{esc(fid)}</code></td>"
                f"<td class=bad>{esc(rzh)} / {esc(ren)}</td></tr>"
            )
        t.append("</table>")
        a(_card("整批暂缓入库", "batches held back whole", "".join(t), cls="card held"))
    a("</section>")

    # ---- freshness
    sid, zh, en = SECTIONS[3]
    a(f'<section id="{sid}"><h2>{zh} · {en}</h2><div class="grid">')
    items, cols = [], []
    for f in fresh:
        age = f["age_days"]
        items.append((f"{f['department']}/{f['dataset']}", age if age is not None else 0.0))
        bad = age is None or age > max_stale_days or f.get("last_status") not in (None, "landed")
        cols.append(_STALE if bad else SIGNATURES["freshness"])
    a(
        _card(
            "距上次成功拉取（天）",
            "days since last successful fetch",
            hbar_chart(
                "freshness",
                "freshness per source",
                items,
                SIGNATURES["freshness"],
                label_w=170,
                colors=cols,
                value_fmt=_age,
                min_bar=3,
                threshold=(max_stale_days, f"上限 max {max_stale_days:g} d"),
                unit=" d",
            ),
            f"超过 {max_stale_days:g} 天或最近一次拉取失败标红。 Red: staler than {max_stale_days:g} days "
            f"or the last fetch failed.",
        )
    )
    t = [
        "<table><tr><th>数据源 source</th><th>上次成功 last success</th><th>天 days</th>"
        "<th>最近状态 last status</th></tr>"
    ]
    for f in fresh:
        age = f["age_days"]
        status = f.get("last_status") or "—"
        cls = "ok" if status == "landed" else "bad"
        err = " / ".join(x for x in (f.get("last_error_zh"), f.get("last_error_en")) if x)
        note = f"<br><span class=note>{esc(err)}</span>" if err and status != "landed" else ""
        t.append(
            f"<tr><td>{esc(f['department'])}/{esc(f['dataset'])}</td>"
            f"<td>{esc(f.get('last_success') or '从未 never')}</td>"
            f"<td class=num>{'—' if age is None else f'{age:.2f}'}</td>"
            f"<td class={cls}>{esc(status)}{note}</td></tr>"
        )
    t.append("</table>")
    a(
        _card(
            "数据源状态",
            "source states",
            "".join(t),
            f"{len(not_landed)} 个数据源最近一次拉取未成功 sources whose last fetch failed" if not_landed else "",
        )
    )
    a("</div></section>")

    if {"rules.blacklist", "rules.listing_candidates"} <= _tables(con):  # a warehouse the rules ran on
        a(decisions_section(con, esc, _card))

    if unconfirmed is not None:
        from safecredit.unconfirmed import unconfirmed_html

        a(unconfirmed_html(unconfirmed, policy_version))

    a(
        f"<footer>SafeCredit Exchange · 安全生产信用与联合惩戒数据交换平台 · 版本 version {esc(version)} · "
        f"本页自包含，无外部资源 self-contained, no external resources</footer>"
    )
    a("</body></html>")
    return "\n".join(parts)


def report_path(exports_root, version: str) -> Path:
    return Path(exports_root) / "reports" / f"{version}.html"


def write_report(exports_root, version: str, html: str) -> Path:
    """Write `<exports>/reports/<version>.html` atomically (temp file + rename); returns the path."""
    path = report_path(exports_root, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{version}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
