"""`/v1/restrictions`: may this unit or person be granted a matter (exchange.md §2) — one code, a
lookup with the code in the body, a batch of up to 1,000. Async: answers from the snapshot's
answer index (the publication's date and, from its timelines, any other `as_of`) never leave the
event loop; only what reads files does (`known_at`)."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

import anyio
import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from ..charging import charge_resolved
from ..problems import ApiProblem
from ..restrictions import answer_subjects, can_answer_from_index
from ..schemas import (
    BatchAnswer,
    BatchRequest,
    LookupRequest,
    RestrictionAnswer,
)
from ..service import BEARER, Reader, principal_in, served, v1_router
from ..subjects import MAX_BATCH, Subject, masked_code, resolve_subjects

log = logging.getLogger("safecredit.api")

MAX_PATH_CODE = 200
MAX_MATTER = 100


def _optional(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


#: the parameters of GET /v1/restrictions/{code} as OpenAPI documents them. The route reads them
#: itself (`_get_parameters`): FastAPI's per-parameter validation cost a third of this hot
#: route's time, for five plain values.
GET_PARAMETERS = [
    {
        "name": "code",
        "in": "path",
        "required": True,
        "description": "USCC or ID number (prefer POST lookup for ID numbers)",
        "schema": {"type": "string", "maxLength": MAX_PATH_CODE, "title": "Code"},
    },
    {
        "name": "matter",
        "in": "query",
        "required": False,
        "schema": {**_optional({"type": "string", "maxLength": MAX_MATTER}), "title": "Matter"},
    },
    {
        "name": "as_of",
        "in": "query",
        "required": False,
        "description": "answer for this date with today's knowledge",
        "schema": {**_optional({"type": "string", "format": "date"}), "title": "As Of"},
    },
    {
        "name": "known_at",
        "in": "query",
        "required": False,
        "description": "answer with what was published by then",
        "schema": {**_optional({"type": "string", "format": "date"}), "title": "Known At"},
    },
    {
        "name": "subject_type",
        "in": "query",
        "required": False,
        "schema": {**_optional({"enum": ["unit", "person"], "type": "string"}), "title": "Subject Type"},
    },
]


def _get_parameters(asgi: dict, code: str) -> tuple[str | None, str | None, date | None, date | None]:
    """(subject_type, matter, as_of, known_at) of a GET of `code`, checked as GET_PARAMETERS say;
    a wrong one is the 422 FastAPI's validation gives (the same problem body, never the input)."""
    errors: list[dict] = []

    def too_long(loc: tuple, value: str | None, limit: int) -> None:
        if value is not None and len(value) > limit:
            errors.append(
                {"loc": loc, "msg": f"String should have at most {limit} characters", "type": "string_too_long"}
            )

    def day(name: str) -> date | None:
        value = query.get(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            errors.append({"loc": ("query", name), "msg": "Input should be a valid date", "type": "date_parsing"})
            return None

    query = _query(asgi)
    matter, subject_type = query.get("matter"), query.get("subject_type")
    too_long(("path", "code"), code, MAX_PATH_CODE)
    too_long(("query", "matter"), matter, MAX_MATTER)
    as_of, known_at = day("as_of"), day("known_at")
    if subject_type is not None and subject_type not in ("unit", "person"):
        errors.append(
            {"loc": ("query", "subject_type"), "msg": "Input should be 'unit' or 'person'", "type": "literal_error"}
        )
    if errors:
        raise RequestValidationError(errors)
    return subject_type, matter, as_of, known_at


def _query(scope) -> dict[str, str]:
    """The query's parameters, a repeated one's last value (as Starlette's `QueryParams.get`),
    without building its multi-dict for five plain values."""
    raw = scope.get("query_string", b"")
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}


async def _answers(
    r: Reader, resolved: list, matter: str | None, as_of: date | None, known_at: date | None
) -> list[dict | ApiProblem]:
    """Answers from the snapshot's index on the event loop (no query, nothing blocks); anything
    that reads (`known_at`) in a worker thread."""

    def answer() -> list[dict | ApiProblem]:
        return answer_subjects(r.snap, r.cur, resolved, matter=matter, as_of=as_of, known_at=known_at, serialised=True)

    if can_answer_from_index(r.snap, as_of, known_at):
        return answer()
    return await anyio.to_thread.run_sync(answer)


def json_response(body: Any, status: int = 200) -> Response:
    """The body serialised once (orjson, UTF-8, compact), not validated again against the model."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def answer_get(asgi: dict, code: str) -> bytes:
    """The body of `GET /v1/restrictions/{code}` for an ASGI scope the middleware let through (its
    principal in the scope's state): raises ApiProblem or RequestValidationError. The route calls
    it, and so does the middleware's fast path (`fastpath.py`), without a Request or a Response."""
    return await _answer_one(asgi, code, *_get_parameters(asgi, code))


async def _answer_one(asgi: dict, code: str, subject_type, matter, as_of, known_at) -> bytes:
    with served(asgi, principal_in(asgi, "restrictions:read")) as r:
        subject = resolve_subjects([code], subject_type, r.svc.salt)[0]
        asgi["state"]["audit_code"] = subject.shown if isinstance(subject, Subject) else masked_code(code)
        await charge_resolved(r, [subject], subject_type)
        result = (await _answers(r, [subject], matter, as_of, known_at))[0]
    if isinstance(result, ApiProblem):
        raise result
    return orjson.dumps(result)


def router() -> APIRouter:
    router = v1_router()

    @router.get(
        "/restrictions/{code}",
        response_model=RestrictionAnswer,
        tags=["restrictions"],
        summary="may this unit (USCC) or person (ID number) be granted `matter`? (restrictions:read)",
        openapi_extra={**BEARER, "parameters": GET_PARAMETERS},
    )
    async def get_restrictions(request: Request):
        return Response(await answer_get(request.scope, request.path_params["code"]), media_type="application/json")

    get_restrictions.answer = answer_get  # what the middleware's fast path calls instead (fastpath.py)

    @router.post(
        "/restrictions/lookup",
        response_model=RestrictionAnswer,
        tags=["restrictions"],
        summary="the same with the code in the body (keeps ID numbers out of URLs) (restrictions:read)",
        openapi_extra=BEARER,
    )
    async def lookup(body: LookupRequest, request: Request):
        answer = await _answer_one(request.scope, body.code, body.subject_type, body.matter, body.as_of, body.known_at)
        return Response(answer, media_type="application/json")

    @router.post(
        "/restrictions/batch",
        response_model=BatchAnswer,
        tags=["restrictions"],
        summary=f"up to {MAX_BATCH} codes at once, answers in the order asked (restrictions:read)",
        openapi_extra=BEARER,
    )
    async def batch(body: BatchRequest, request: Request):
        with served(request.scope, principal_in(request.scope, "restrictions:read")) as r:
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
