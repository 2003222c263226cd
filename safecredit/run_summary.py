"""What one run did, written by the run itself: `<home>/logs/runs/<run_id>/`.

Each stage records its part (`landing-<dataset>.json`, `staged-<dataset>.json`, `subjects.json`,
`rules.json`, `listing-decisions.json`) while it runs; the step that decides the publication — the publish asset, or the
publication gate when it blocks — assembles them into `summary.json`. `safecredit run`, the demo
and the failure alert read that file; nobody has to parse Dagster's event metadata to learn what a
run fetched, staged and published, whoever started it (CLI, schedule, sensor, backfill).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from safecredit.config import Paths
from safecredit.errors import PublicationBlocked
from safecredit.landing import write_json_atomic

SUMMARY = "summary.json"


@dataclass
class RunSummary:
    ok: bool
    published: bool
    version: str = ""
    reasons: list = field(default_factory=list)
    sources: list = field(default_factory=list)  # per (dept, dataset) fetch results
    staged: dict = field(default_factory=dict)  # per dataset counts
    feeds: dict = field(default_factory=dict)  # feed -> rows
    feed_deltas: dict = field(default_factory=dict)  # feed -> {rows, ADD, MOD, DEL}
    blacklist: dict = field(default_factory=dict)
    # listing decisions against the computed list (rules.md §3): counts, disagreements, overdue entries
    listing_decisions: dict = field(default_factory=dict)
    subjects: dict = field(default_factory=dict)  # resolution per source
    exports: str = ""
    log: str = ""
    run_id: str = ""
    steps: dict = field(default_factory=dict)  # Dagster step key -> wall seconds (the runner adds them)


def run_dir(paths: Paths, run_id: str) -> Path:
    return paths.logs / "runs" / run_id


def record_part(paths: Paths, run_id: str, part: str, data: dict) -> None:
    """Record what one step of run `run_id` did (a small JSON document)."""
    write_json_atomic(run_dir(paths, run_id) / f"{part}.json", data)


def _parts(paths: Paths, run_id: str) -> dict[str, dict]:
    folder = run_dir(paths, run_id)
    if not folder.is_dir():
        return {}
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json")) if p.name != SUMMARY
    }


def assemble(
    paths: Paths,
    run_id: str,
    *,
    published: bool,
    version: str = "",
    reasons: list | None = None,
    feeds: dict | None = None,
    feed_deltas: dict | None = None,
) -> RunSummary:
    """The summary of a run whose publication was decided: its parts plus the outcome."""
    s = RunSummary(
        ok=True,
        published=published,
        version=version,
        reasons=list(reasons or []),
        feeds=dict(feeds or {}),
        feed_deltas=dict(feed_deltas or {}),
        exports=str(paths.exports),
        run_id=run_id,
    )
    for name, part in _parts(paths, run_id).items():
        if name.startswith("landing-"):
            s.sources.extend(part.get("sources", []))
        elif name.startswith("staged-"):
            s.staged[name.removeprefix("staged-")] = part
        elif name == "subjects":
            s.subjects = part
        elif name == "rules":
            s.blacklist = part
        elif name == "listing-decisions":
            s.listing_decisions = part
    s.sources.sort(key=lambda r: (r.get("department", ""), r.get("dataset", "")))
    return s


def write_summary(paths: Paths, summary: RunSummary) -> Path:
    path = run_dir(paths, summary.run_id) / SUMMARY
    write_json_atomic(path, asdict(summary))
    return path


def record_blocked(paths: Paths, run_id: str, reasons: list[dict], feeds: dict | None = None) -> RunSummary:
    """A check that blocks the publication adds its reasons to the run's summary (several checks
    may block the same run; each one's reasons are kept)."""
    s = read_summary(paths, run_id) or assemble(paths, run_id, published=False)
    s.reasons.extend(r for r in reasons if r not in s.reasons)
    s.feeds = {**s.feeds, **(feeds or {})}
    write_summary(paths, s)
    return s


def read_summary(paths: Paths, run_id: str) -> RunSummary | None:
    """The summary a run wrote, or None when it ended before deciding its publication."""
    path = run_dir(paths, run_id) / SUMMARY
    if not path.exists():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    known = set(RunSummary.__dataclass_fields__)
    return RunSummary(**{k: v for k, v in doc.items() if k in known})  # a summary of another release reads too


def decisions_part(con, limit: int = 50) -> dict:
    """What the listing decisions say against the computed list (rules.md §3), for the run's summary:
    counts, and the disagreements and overdue entries themselves (the first `limit` of each; the
    warehouse tables rules.listing_decision_issues and rules.overdue_candidates hold all)."""

    def rows(sql: str) -> list[dict]:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [{k: (str(v) if v is not None else None) for k, v in zip(cols, r)} for r in cur.fetchall()]

    issues = "SELECT issue, entry_id, decision_no, authority_code, ground, penalty_decision_no, message_zh, message_en "
    overdue = "SELECT entry_id, authority, ground, decision_no, decision_due_date, message_zh, message_en "
    return {
        "decided": con.execute("SELECT count(*) FROM rules.blacklist WHERE decided").fetchone()[0],
        "inferred": con.execute("SELECT count(*) FROM rules.blacklist WHERE NOT decided").fetchone()[0],
        "candidates": con.execute("SELECT count(*) FROM rules.listing_candidates").fetchone()[0],
        "disagreements_count": con.execute("SELECT count(*) FROM rules.listing_decision_issues").fetchone()[0],
        "overdue_count": con.execute("SELECT count(*) FROM rules.overdue_candidates").fetchone()[0],
        "disagreements": rows(f"{issues} FROM rules.listing_decision_issues ORDER BY ALL LIMIT {int(limit)}"),
        "overdue": rows(f"{overdue} FROM rules.overdue_candidates ORDER BY entry_id LIMIT {int(limit)}"),
        "out_of_scope": con.execute(
            "SELECT count(*) FROM rules.listing_scope_report WHERE outcome = 'out_of_scope'"
        ).fetchone()[0],
    }


def partial(paths: Paths, run_id: str, log: str) -> RunSummary:
    """A run that failed before deciding its publication: what its steps recorded."""
    s = assemble(paths, run_id, published=False)
    s.ok, s.log = False, log
    return s


def exit_code(summary: RunSummary) -> int:
    """operations.md: 0 published · 1 ran, publication blocked · 4 internal error."""
    if not summary.ok:
        return 4
    return 0 if summary.published else PublicationBlocked.exit_code
