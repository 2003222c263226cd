"""`/v1/restrictions`: may this unit or person be granted a matter (exchange.md §2) — one code, a
lookup with the code in the body, a batch of up to 1,000. Async: answers from the snapshot's
answer index never leave the event loop; only what reads does (`known_at`, another `as_of`)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from ..charging import charge_resolved
from ..problems import ApiProblem
from ..restrictions import (
    MAX_BATCH,
    Subject,
    answer_subjects,
    can_answer_from_index,
    masked_code,
    resolve_subjects,
)
from ..schemas import (
    BatchAnswer,
    BatchRequest,
    LookupRequest,
    RestrictionAnswer,
    SubjectType,
)
from ..service import BEARER, Reader, serving, v1_router

log = logging.getLogger("safecredit.api")

code_param = PathParam(..., max_length=200, description="USCC or ID number (prefer POST lookup for ID numbers)")


async def _answers(
    r: Reader, resolved: list, matter: str | None, as_of: date | None, known_at: date | None
) -> list[dict | ApiProblem]:
    """Answers from the snapshot's index on the event loop (no query, nothing blocks); anything
    that reads (`known_at`, another `as_of`) in a worker thread."""

    def answer() -> list[dict | ApiProblem]:
        return answer_subjects(r.snap, r.cur, resolved, matter=matter, as_of=as_of, known_at=known_at, serialised=True)

    if can_answer_from_index(r.snap, as_of, known_at):
        return answer()
    return await anyio.to_thread.run_sync(answer)


def json_response(body: Any, status: int = 200) -> Response:
    """The body serialised once (orjson, UTF-8, compact), not validated again against the model."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def router() -> APIRouter:
    router = v1_router()

    async def one(request: Request, code: str, subject_type, matter, as_of, known_at) -> Response:
        with serving(request, "restrictions:read") as r:
            subject = resolve_subjects([code], subject_type, r.svc.salt)[0]
            request.state.audit_code = subject.shown if isinstance(subject, Subject) else masked_code(code)
            await charge_resolved(r, [subject], subject_type)
            result = (await _answers(r, [subject], matter, as_of, known_at))[0]
        if isinstance(result, ApiProblem):
            raise result
        return json_response(result)

    @router.get(
        "/restrictions/{code}",
        response_model=RestrictionAnswer,
        tags=["restrictions"],
        summary="may this unit (USCC) or person (ID number) be granted `matter`? (restrictions:read)",
        openapi_extra=BEARER,
    )
    async def get_restrictions(
        request: Request,
        code: str = code_param,
        matter: str | None = Query(None, max_length=100),
        as_of: date | None = Query(None, description="answer for this date with today's knowledge"),
        known_at: date | None = Query(None, description="answer with what was published by then"),
        subject_type: SubjectType | None = Query(None),
    ):
        return await one(request, code, subject_type, matter, as_of, known_at)

    @router.post(
        "/restrictions/lookup",
        response_model=RestrictionAnswer,
        tags=["restrictions"],
        summary="the same with the code in the body (keeps ID numbers out of URLs) (restrictions:read)",
        openapi_extra=BEARER,
    )
    async def lookup(body: LookupRequest, request: Request):
        return await one(request, body.code, body.subject_type, body.matter, body.as_of, body.known_at)

    @router.post(
        "/restrictions/batch",
        response_model=BatchAnswer,
        tags=["restrictions"],
        summary=f"up to {MAX_BATCH} codes at once, answers in the order asked (restrictions:read)",
        openapi_extra=BEARER,
    )
    async def batch(body: BatchRequest, request: Request):
        with serving(request, "restrictions:read") as r:
            resolved = resolve_subjects(body.codes, body.subject_type, r.svc.salt)
            shown = [s.shown if isinstance(s, Subject) else masked_code(c) for s, c in zip(resolved, body.codes)]
            request.state.audit_code = f"batch[{len(shown)}]:" + ",".join(shown)
            await charge_resolved(r, resolved, body.subject_type)
            results = await _answers(r, resolved, body.matter, body.as_of, body.known_at)
            version = r.snap.version
        items = []
        restricted = 0
        for i, (res, code) in enumerate(zip(results, shown)):
            if isinstance(res, ApiProblem):
                b = res.body()
                items.append(
                    {
                        "index": i,
                        "code": code,
                        "status": res.status,
                        "answer": None,
                        "error": {"status": res.status, "detail": b["detail"], "type": b["type"]},
                    }
                )
            else:
                restricted += res["restricted"]
                items.append({"index": i, "code": res["code"], "status": 200, "answer": res, "error": None})
        return json_response({"version": version, "count": len(items), "restricted": restricted, "results": items})

    return router
