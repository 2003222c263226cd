"""What `safecredit mirror` can end with, as the exit codes of operations.md.

0 up to date · 1 a manifest or file failed verification (the local copy stays at its last good
version) · 2 bad usage · 3 source unreachable. The user-facing ones are `UserError`s, so the CLI
prints them in Chinese and English without a traceback.
"""

from __future__ import annotations

from safecredit.errors import ConfigError, UserError


class MirrorUsageError(ConfigError):
    """Bad arguments: no public key, an unknown feed, an unusable target (exit 2)."""

    exit_code = 2


class SourceUnreachable(UserError):
    """The exports directory or the API cannot be read (exit 3)."""

    exit_code = 3


class MirrorVerificationFailed(UserError):
    """A manifest's signature or a file's sha256 does not match (exit 1)."""

    exit_code = 1


class Gone(Exception):
    """A version or file the source no longer serves (pruned: 410, or missing): re-sync from full."""
