"""`/v1/blacklist`, `/v1/penalties` (paged, or what changed since a version), `/v1/intermediaries`."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from ..keys import Principal
from ..paging import cursor_q, limit_q, page_of, since_q
from ..problems import ApiProblem
from ..rows import published_row, record_for, valid_uscc
from ..schemas import (
    IntermediaryAnswer,
    Page,
)
from ..service import Reader, reader, require, v1_router
from ..subjects import masked_code

log = logging.getLogger("safecredit.api")


def router() -> APIRouter:
    router = v1_router()

    @router.get(
        "/blacklist",
        response_model=Page,
        tags=["lists"],
        summary="the serious-dishonesty list, or what changed since a version (lists:read)",
    )
    def blacklist(
        since_version: str | None = since_q,
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        _p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        return page_of(r, "blacklist", since_version=since_version, cursor=cursor, limit=limit)

    @router.get(
        "/penalties", response_model=Page, tags=["lists"], summary="the penalties_public feed (双公示) (lists:read)"
    )
    def penalties(
        since_version: str | None = since_q,
        cursor: str | None = cursor_q,
        limit: int = limit_q,
        _p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        return page_of(r, "penalties_public", since_version=since_version, cursor=cursor, limit=limit)

    @router.get(
        "/intermediaries/{uscc}",
        response_model=IntermediaryAnswer,
        tags=["lists"],
        summary="a technical-service agency's rating (lists:read)",
    )
    def intermediaries(
        request: Request,
        uscc: str = PathParam(..., max_length=64),
        _p: Principal = Depends(require("lists:read")),
        r: Reader = Depends(reader),
    ):
        request.state.audit_code = masked_code(uscc)
        code = valid_uscc(uscc)
        rows, version, as_of = record_for(r, "intermediary_ratings", code, None)
        if not rows:
            raise ApiProblem(
                404, f"{code} has no agency rating in version {version}", f"{code} 没有中介机构评级", kind="not-in-feed"
            )
        return {"uscc": code, "version": version, "as_of": as_of, "ratings": [published_row(x) for x in rows]}

    return router
