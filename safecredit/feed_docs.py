"""docs/FEEDS.md: every published feed, its files, id columns, scope and columns (from FEEDS).

    python -m safecredit.feed_docs > docs/FEEDS.md

A test keeps the committed file equal to what the registry says.
"""

from __future__ import annotations


def render() -> str:
    from safecredit.policy import policy_for, unconfirmed_values
    from safecredit.publish import FEEDS, feed_docs_markdown
    from safecredit.unconfirmed import unconfirmed_markdown

    head = (
        "# Published feeds\n\n"
        "Generated from `safecredit/publish/feeds.py` by `python -m safecredit.feed_docs`; do not edit.\n"
        "Layout, versions, manifests, signatures and deltas: `../shared/spec/exchange.md` §1. Each version of "
        "a feed has `full.parquet`, `full.csv` (UTF-8 with BOM, the Chinese headers below), `full.jsonl`, "
        "`delta.jsonl` and a signed `manifest.json`. The run's `as_of` is in the manifest, not in the rows. "
        "Beyond exchange.md's fields a manifest names its `id_columns`, its `columns` (name, type, header), "
        "the `delta`'s counts, `held_back` sources, `run_info`, an `override`, `restored_from`, the signing "
        "`key_id` and `rendered_by`: a digest of the code and DuckDB that rendered its files (a feed whose rows "
        "did not change is linked to the previous version's files only when that digest is the same).\n"
    )
    feeds = "\n".join(feed_docs_markdown(FEEDS[name]) for name in sorted(FEEDS))
    policy = policy_for(None)  # the latest policy of contracts/policy (or SAFECREDIT_POLICY_DIR)
    declared = str(policy.get("version"))  # not the content hash: the list changes only when a value does
    return head + "\n" + FORMATS + "\n" + feeds + "\n" + unconfirmed_markdown(unconfirmed_values(policy), declared)


FORMATS = """## File formats

Rows are in stable-id order in every file. `full.jsonl`: one JSON object per row, keys in column
order, UTF-8 unescaped, no spaces; dates and times ISO 8601 (a time-zone-aware timestamp in UTC,
`+00:00`), decimals as numbers (as exact strings beyond 15 significant digits), non-finite floats
as `null`, bytes as base64, lists and structs as arrays and objects. `full.csv`: UTF-8 with BOM,
CRLF, the Chinese headers below, the flat columns only — the ones a spreadsheet user reads; list
and struct columns (score components, worksheets, condition lists) are in `full.parquet` and
`full.jsonl` — the JSON value of each cell (text unquoted, `''` for null), quoted only where
needed; text starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so that Excel does not
run it as a formula. `delta.jsonl`:
`{"op":"ADD"|"MOD"|"DEL","id":…,"record":…}` against the previous version, in id order (a
composite id is an array). A data file whose bytes did not change since the previous version is a
hard link to that version's file.

Since the publication runs in DuckDB (issue 10), bytes differ from earlier versions only here:
`full.parquet` is written by DuckDB (zstd; the values and their types are unchanged, Arrow-only
details are not kept: the Arrow schema metadata, `large_string` (read back as `string`), timestamp
units (as DuckDB writes them)); a timestamp with a time zone other than UTC is written in UTC; an interval is its
total seconds; a decimal with more than 21 digits after the point is written in plain notation.
The full-ID-number guard also reads text inside lists and structs. Since issue 10 §6, `full.csv`
leaves out list and struct columns (they were their JSON text, most of the bytes of
`credit_scores` and `premium_factors`). Since issue 10 §6 (lean feeds) the score components and
the premium and 工伤 worksheets are feeds of their own keyed by the unit (`credit_score_components`,
`premium_worksheets`, `injury_insurance_worksheets`) and the rows carry codes where they carried
labels (the 守信 conditions, each worksheet adjustment and step rule): names, policy values and
their legal basis are rows of `codes`, once per version. The API's answers join them back and keep
their shape; `docs/CONSUMERS.md` shows the same join in SQL.
"""


if __name__ == "__main__":
    print(render(), end="")
