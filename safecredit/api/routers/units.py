"""`/v1/credit/{uscc}`, `/v1/premium-factors/{uscc}` and `/v1/premium-factors`: a unit's row of a
per-unit feed, from the served version or the one answering for `as_of`."""

from __future__ import annotations

import logging
from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from ..keys import Principal
from ..paging import cursor_q, limit_q, page_of
from ..problems import ApiProblem
from ..restrictions import (
    masked_code,
)
from ..rows import published_row, record_for, valid_uscc
from ..schemas import (
    Page,
    Record,
)
from ..service import Reader, reader, require, v1_router

log = logging.getLogger("safecredit.api")


def router() -> APIRouter:
    router = v1_router()

    def unit_record(r: Reader, request: Request, feed: str, uscc: str, as_of: date | None) -> dict:
        request.state.audit_code = masked_code(uscc)
        code = valid_uscc(uscc)
        rows, version, feed_as_of = record_for(r, feed, code, as_of)
        if not rows:
            raise ApiProblem(
                404, f"{code} is not in {feed} version {version}", f"{code} 不在 {feed} 中", kind="not-in-feed"
            )
        return {**published_row(rows[0]), "uscc": code, "version": version, "as_of": feed_as_of}

    @router.get(
        "/credit/{uscc}", response_model=Record, tags=["credit"], summary="score, grade, components (credit:read)"
    )
    def credit(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        as_of: date | None = Query(None),
        _p: Principal = Depends(require("credit:read")),
        r: Reader = Depends(reader),
    ):
        return unit_record(r, request, "credit_scores", uscc, as_of)

    @router.get(
        "/premium-factors/{uscc}",
        response_model=Record,
        tags=["premium"],
        summary="factor, components, policy version, validity (premium:read)",
    )
    def premium_one(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        as_of: date | None = Query(None),
        _p: Principal = Depends(require("premium:read")),
        r: Reader = Depends(reader),
    ):
        return unit_record(r, request, "premium_factors", uscc, as_of)

    @router.get(
        "/premium-factors",
        response_model=Page,
        tags=["premium"],
        summary="every unit's premium factor, paged (premium:read)",
    )
    def premium_all(
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        _p: Principal = Depends(require("premium:read")),
        r: Reader = Depends(reader),
    ):
        return page_of(r, "premium_factors", since_version=None, cursor=cursor, limit=limit)

    return router
