"""`/v1/credit/{uscc}`, `/v1/premium-factors/{uscc}`, `/v1/premium-factors`, `/v1/incentives/{uscc}`,
`/v1/injury-insurance/{uscc}`: a unit's row of a per-unit feed, from the served version or the one
answering for `as_of`; and `/v1/candidates`, a deciding authority's queue (exchange.md §2)."""

from __future__ import annotations

import logging
from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from ..keys import Principal, authority_of
from ..paging import cursor_q, limit_q, page_of
from ..problems import ApiProblem
from ..rows import published_row, record_for, valid_uscc
from ..schemas import (
    Page,
    Record,
)
from ..service import Reader, reader, require, v1_router
from ..subjects import masked_code

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

    @router.get(
        "/incentives/{uscc}",
        response_model=Record,
        tags=["credit"],
        summary="守信激励 the unit qualifies for, conditions checked and not checked (restrictions:read)",
    )
    def incentives(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        as_of: date | None = Query(None),
        _p: Principal = Depends(require("restrictions:read")),
        r: Reader = Depends(reader),
    ):
        return unit_record(r, request, "incentives", uscc, as_of)

    @router.get(
        "/injury-insurance/{uscc}",
        response_model=Record,
        tags=["premium"],
        summary="工伤保险 floating-rate inputs and the suggested step, with the worksheet (premium:read)",
    )
    def injury_insurance(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        as_of: date | None = Query(None),
        _p: Principal = Depends(require("premium:read")),
        r: Reader = Depends(reader),
    ):
        return unit_record(r, request, "injury_insurance_factors", uscc, as_of)

    @router.get(
        "/candidates",
        response_model=Page,
        tags=["lists"],
        summary="the key's deciding authority's queue: inferred or undecided entries (candidates:read)",
    )
    def candidates(
        request: Request,
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        p: Principal = Depends(require("candidates:read")),
        r: Reader = Depends(reader),
    ):
        authority = authority_of(request.app.state.service.keys.engine, p.key_id)
        if authority is None:
            raise ApiProblem(
                403,
                "this key is bound to no deciding authority: create one with `safecredit keys create "
                "--scopes candidates:read --authority <USCC>`",
                "该密钥未绑定决定机关：请以 `safecredit keys create --scopes candidates:read "
                "--authority <统一社会信用代码>` 创建",
                kind="forbidden",
            )
        return page_of(
            r, "listing_candidates", since_version=None, cursor=cursor, limit=limit, match=("authority_code", authority)
        )

    return router
