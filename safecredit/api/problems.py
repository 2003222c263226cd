"""RFC 9457 problem details: every error the service answers is `application/problem+json`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

PROBLEM_TYPE_BASE = "https://safecredit.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(BaseModel):
    """The body of every error (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class ApiProblem(Exception):
    """Raised anywhere in a request: answered as problem+json with `status`.

    `detail` is bilingual (English, then Chinese) when `zh` is given; `kind` names the problem
    type (a stable slug a client can switch on); `extra` adds members (e.g. `errors`).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        zh: str | None = None,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        self.status = status
        self.en, self.zh = detail, zh  # the two languages apart (the CLI prints them on their own lines)
        self.detail = f"{detail} / {zh}" if zh else detail
        self.kind = kind or TITLES.get(status, "error").lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra
        super().__init__(self.detail)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(self.status, self.detail, kind=self.kind, instance=instance, **self.extra)


def problem_body(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    instance: str | None = None,
    title: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    kind = kind or TITLES.get(status, "error").lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + kind,
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def problem_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
    from starlette.responses import Response

    return Response(problem_bytes(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# Documented on every route so the OpenAPI description matches what the service answers.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {
            "description": TITLES.get(s, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


def add_problem_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Register the Problem schema the routes' error responses refer to."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
    return openapi
