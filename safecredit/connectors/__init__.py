"""Connectors: talk to departments over the feed protocol (department-feeds.md) with `requests`."""

from safecredit.connectors.client import (  # noqa: F401
    CursorExpired,
    DepartmentClient,
    RetryPolicy,
    SourceError,
    SourceUnavailable,
)
