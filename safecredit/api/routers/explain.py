"""`/v1/explain/{id}`: the published records behind a list entry, penalty, restriction or unit
(`safecredit.explain.explain_published`), limited to what the key's scopes may read."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from safecredit.explain import ENTRY_RE, explain_published

from ..keys import Principal
from ..rows import published_row
from ..schemas import (
    Explanation,
)
from ..service import Reader, reader, require, v1_router
from ..subjects import masked_code

log = logging.getLogger("safecredit.api")


def router() -> APIRouter:
    router = v1_router()

    @router.get(
        "/explain/{entry_id}",
        response_model=Explanation,
        tags=["lists"],
        summary="the published records behind a list entry, penalty, restriction, score or factor (lists:read)",
    )
    def explain(
        request: Request,
        entry_id: str = PathParam(..., max_length=64),
        p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        # an entry, penalty or restriction id names no person: the audit keeps it whole (which entry
        # was explained is the point of the record); anything else is masked like a code
        ident = entry_id.strip()
        request.state.audit_code = ident if ENTRY_RE.match(ident) else masked_code(ident)
        return explain_published(r.snap, r.cur, entry_id, p.scopes, row=published_row)

    return router
