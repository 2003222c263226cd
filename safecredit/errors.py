"""User-facing errors: a bilingual message and the exit code operations.md fixes.

Raise these for anything a user can fix (bad config, bad code, nothing published yet); the CLI
prints them without a traceback. Anything else is an internal error (exit 4, pointer to the log).
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can act on. `zh` and `en` say what is wrong and what to do."""

    exit_code = 2

    def __init__(self, zh: str, en: str, *, exit_code: int | None = None):
        super().__init__(f"{zh}\n{en}")
        self.zh = zh
        self.en = en
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(UserError):
    """Bad usage or configuration (exit 2)."""

    exit_code = 2


class WarehouseBusy(UserError):
    """Another run holds the warehouse (exit 3)."""

    exit_code = 3


class NotFound(UserError):
    """Nothing is known by the id or code asked (the API answers 404)."""

    exit_code = 2


class NothingPublished(UserError):
    """No publication exists yet (exit 3 for `check`)."""

    exit_code = 3


class PublicationBlocked(UserError):
    """The run completed but publication was blocked (exit 1)."""

    exit_code = 1
