"""Exceptions of the publication machinery.

Every one is a `safecredit.errors.UserError` with a Chinese and an English message (`zh`, `en`),
so the CLI prints them without a traceback. The API maps them: `UnsafePath` → 404 (never reveal
why), `VersionPruned` → 410, `VersionNotFound` → 404, `PublishLocked` → 503.
"""

from __future__ import annotations

from safecredit.errors import UserError


class PublishError(UserError):
    """Base of every error raised by safecredit.publish."""

    exit_code = 2

    def __init__(self, en: str, zh: str | None = None, *, exit_code: int | None = None):
        super().__init__(zh or en, en, exit_code=exit_code)
        self.message = en

    def __str__(self) -> str:
        return self.message if self.zh == self.en else f"{self.zh} / {self.en}"


class UnsafePath(PublishError, ValueError):
    """A feed/version/file name that is malformed, unknown or would leave the exports root."""


class VersionNotFound(PublishError, LookupError):
    """No complete version of that feed under that id (unknown, failed, or missing)."""


class VersionPruned(VersionNotFound):
    """The version existed but was removed by retention (HTTP 410 Gone)."""


class VerificationError(PublishError):
    """A version's files or signature do not match its manifest."""


class PublishLocked(PublishError):
    """Another publisher holds the exports root."""

    exit_code = 3


class FullIdNumberError(PublishError, ValueError):
    """A table about to be published contains full (unmasked) 18-digit ID numbers."""
