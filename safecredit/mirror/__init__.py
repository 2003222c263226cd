"""`safecredit mirror`: a verified local copy of the published feeds (exchange.md §1, operations.md).

    safecredit mirror --from https://exchange.example/ --key … --into feeds.duckdb --public-key exchange.pem

Sources (`sources`): an exports directory or the API's feed routes. Targets (`targets`,
`sqltargets`): a DuckDB file, SQLite, or PostgreSQL. `sync` applies the delta chain version by
version, each in one transaction with the recorded version, and re-syncs from `full.parquet` on a gap.
"""

from .errors import Gone, MirrorUsageError, MirrorVerificationFailed, SourceUnreachable
from .sync import FeedOutcome, mirror

__all__ = ["FeedOutcome", "Gone", "MirrorUsageError", "MirrorVerificationFailed", "SourceUnreachable", "mirror"]
