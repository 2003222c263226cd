"""`/v1/feeds` (the catalogue) and `/v1/feeds/{feed}/{version}/{file}` (a published file, byte for
byte, under the feed's scope)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from safecredit.publish import ALL_FILES, FEEDS
from safecredit.publish.formats import json_value

from ..keys import Principal
from ..problems import ApiProblem
from ..schemas import (
    FeedCatalogue,
)
from ..service import Reader, reader, require, v1_router

log = logging.getLogger("safecredit.api")


def router() -> APIRouter:
    router = v1_router()

    @router.get(
        "/feeds", response_model=FeedCatalogue, tags=["feeds"], summary="feeds and their versions (any valid key)"
    )
    def feeds(_p: Principal = Depends(require(None)), r: Reader = Depends(reader)):
        store = r.svc.store
        out = []
        for name in store.feed_names():
            versions = store.versions(name)
            if not versions.get("items"):
                continue
            spec = FEEDS.get(name)
            info = r.snap.feeds.get(name)
            out.append(
                {
                    "name": name,
                    "title": spec.title if spec else None,
                    "scope": spec.scope if spec else "lists:read",
                    "latest": info.version if info else versions.get("last_successful"),
                    "as_of": info.as_of.isoformat() if info and info.as_of else None,
                    "row_count": info.row_count if info else None,
                    "files": list(ALL_FILES),
                    "versions": [
                        {k: json_value(v) for k, v in item.items() if k != "reasons" or v}
                        for item in versions.get("items") or []
                    ],
                }
            )
        return {"version": r.snap.version, "generated_at": r.snap.generated_at, "feeds": out}

    media = {
        "full.parquet": "application/vnd.apache.parquet",
        "full.csv": "text/csv; charset=utf-8",
        "full.jsonl": "application/x-ndjson",
        "delta.jsonl": "application/x-ndjson",
        "manifest.json": "application/json",
    }

    @router.get(
        "/feeds/{feed}/{version}/{file}",
        tags=["feeds"],
        response_class=FileResponse,
        responses={
            200: {
                "content": {
                    "application/json": {},
                    "text/csv": {},
                    "application/x-ndjson": {},
                    "application/vnd.apache.parquet": {},
                },
                "description": "the file, byte for byte as published",
            }
        },
        summary="one file of a published version (the feed's scope; 410 when pruned)",
    )
    def feed_file(
        request: Request,
        feed: str = PathParam(..., max_length=64),
        version: str = PathParam(..., max_length=40),
        file: str = PathParam(..., max_length=40),
        p: Principal = Depends(require(None)),
    ):
        store = request.app.state.service.store
        spec = FEEDS.get(feed)
        if spec is None and feed not in store.feed_names():
            raise ApiProblem(404, f"unknown feed {feed[:64]!r}", "未知数据集", kind="not-found")
        scope = spec.scope if spec else "lists:read"
        if scope is not None and scope not in p.scopes:  # None: any valid key (the `codes` feed)
            raise ApiProblem(
                403,
                f"this key lacks the scope {scope} that {feed} needs",
                f"该密钥没有读取 {feed} 所需的 {scope} 权限",
                kind="forbidden",
            )
        path = store.safe_file_path(feed, version, file)  # 404 / 410 / never outside the root
        request.state.version = version
        return FileResponse(
            path,
            media_type=media.get(file, "application/octet-stream"),
            filename=f"{feed}-{version}-{file}",
            content_disposition_type="inline",
        )

    return router
