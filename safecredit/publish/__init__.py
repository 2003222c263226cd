"""Publication of the exchange's feeds (exchange.md §1): versioned, atomic, signed, with deltas.

    from safecredit.publish import Publisher
    pub = Publisher(exports_root, key_dir, retention=30)
    result = pub.publish({"blacklist": table, ...}, as_of=date(2026, 11, 23), policy_version="2026.1")

A feed is a pyarrow table, an Arrow stream (polars …) or a DuckDB relation, which is streamed:
the rows go through DuckDB (`columnar`, `render`), never one by one through Python.

Read side (API, CLI): `FeedStore(exports_root)` — `latest`, `status`, `read_manifest`,
`safe_file_path`, `versions_since`, `diff`; `verify_version(...)` checks a version's files and
signature against the operator's public key.
"""

from .delta import apply_delta, compute_delta
from .errors import (
    FullIdNumberError,
    PublishError,
    PublishLocked,
    UnsafePath,
    VerificationError,
    VersionNotFound,
    VersionPruned,
)
from .feeds import FEEDS, FeedSpec, feed_docs_markdown
from .formats import ALL_FILES, DATA_FILES
from .guards import assert_no_full_id_numbers, find_full_id_numbers
from .publisher import Publisher, PublishResult
from .signing import SigningKey, canonical_json, verify_manifest_signature
from .store import FeedStore, VerifyReport, verify_version
from .versions import is_version_id

__all__ = [
    "ALL_FILES",
    "DATA_FILES",
    "FEEDS",
    "FeedSpec",
    "FeedStore",
    "FullIdNumberError",
    "PublishError",
    "PublishLocked",
    "PublishResult",
    "Publisher",
    "SigningKey",
    "UnsafePath",
    "VerificationError",
    "VerifyReport",
    "VersionNotFound",
    "VersionPruned",
    "apply_delta",
    "assert_no_full_id_numbers",
    "canonical_json",
    "compute_delta",
    "feed_docs_markdown",
    "find_full_id_numbers",
    "is_version_id",
    "verify_manifest_signature",
    "verify_version",
]
