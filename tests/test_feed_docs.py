"""The feed documentation in docs/FEEDS.md matches the feed registry."""

from pathlib import Path

from safecredit.feed_docs import render


def test_docs_feeds_md_is_up_to_date():
    committed = (Path(__file__).resolve().parent.parent / "docs" / "FEEDS.md").read_text(encoding="utf-8")
    assert committed == render(), "run: .venv/bin/python -m safecredit.feed_docs > docs/FEEDS.md"
    for feed in ("blacklist", "restrictions", "penalties_public", "credit_scores", "premium_factors",
                 "intermediary_ratings"):
        assert f"`{feed}`" in committed or feed in committed
