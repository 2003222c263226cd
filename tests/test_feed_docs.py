"""The feed documentation in docs/FEEDS.md matches the feed registry, and the registry matches
what a pipeline run really publishes."""

import json
from pathlib import Path

from safecredit.feed_docs import render
from safecredit.publish import FEEDS


def test_docs_feeds_md_is_up_to_date():
    committed = (Path(__file__).resolve().parent.parent / "docs" / "FEEDS.md").read_text(encoding="utf-8")
    assert committed == render(), "run: .venv/bin/python -m safecredit.feed_docs > docs/FEEDS.md"


def test_documented_columns_are_the_published_columns(pipeline_run):
    exports = pipeline_run["home"] / "exports"
    index = json.loads((exports / "index.json").read_text(encoding="utf-8"))
    assert set(index["feeds"]) == set(FEEDS)
    for feed, spec in FEEDS.items():
        manifest = json.loads(
            (exports / feed / index["feeds"][feed]["latest"] / "manifest.json").read_text(encoding="utf-8")
        )
        assert [c["name"] for c in manifest["columns"]] == list(spec.columns), feed


def test_unconfirmed_policy_values_are_listed_in_the_docs():
    """rules.md §4: every value that could not be confirmed is marked in the policy and listed."""
    from safecredit.policy import policy_for, unconfirmed_values

    items = unconfirmed_values(policy_for(None))
    docs = (Path(__file__).resolve().parent.parent / "docs" / "FEEDS.md").read_text(encoding="utf-8")
    section = docs.split("## 未经原文核实的政策取值")[1]
    wheres = {it["where"] for it in items}
    assert {"tables.publicity_regimes[1]", "tables.measures[7]"} <= wheres  # 令第36号's safety minimum; bidding
    for it in items:
        assert f"| `{it['where']}` |" in section and it["basis"], it
    # a confirmed value is not listed: 政府采购 cites 政府采购法 Art. 22
    assert "government_procurement" not in section and "matter=public_bidding" in section
