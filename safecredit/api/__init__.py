"""The exchange service (exchange.md §2): HTTP API, API keys, audit log, serving snapshot.

    from safecredit.api import create_app
    app = create_app(home)             # FastAPI app; `safecredit serve` runs it under uvicorn

Modules: `app` (routes, middleware, errors), `snapshot` (the read-only DuckDB view of the latest
publication and how it is switched), `restrictions` (the restriction answer, shared with
`safecredit check`), `keys` / `models` (consumers, hashed keys, audit tables), `ratelimit`,
`audit`, `problems` (RFC 9457 bodies).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .app import create_app


def __getattr__(name: str) -> Any:  # lazy: importing safecredit.api stays cheap
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
