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
