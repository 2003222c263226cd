"""docs/FEEDS.md: every published feed, its files, id columns, scope and columns (from FEEDS).

    python -m safecredit.feed_docs > docs/FEEDS.md

A test keeps the committed file equal to what the registry says.
"""

from __future__ import annotations


def render() -> str:
    from safecredit.publish import FEEDS, feed_docs_markdown

    head = ("# Published feeds\n\n"
            "Generated from `safecredit/publish/feeds.py` by `python -m safecredit.feed_docs`; do not edit.\n"
            "Layout, versions, manifests, signatures and deltas: `../shared/spec/exchange.md` §1. Each version of "
            "a feed has `full.parquet`, `full.csv` (UTF-8 with BOM, the Chinese headers below), `full.jsonl`, "
            "`delta.jsonl` and a signed `manifest.json`. The run's `as_of` is in the manifest, not in the rows.\n")
    return head + "\n" + "\n".join(feed_docs_markdown(FEEDS[name]) for name in sorted(FEEDS))


if __name__ == "__main__":
    print(render(), end="")
