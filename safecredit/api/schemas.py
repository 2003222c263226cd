"""The request and answer models of the API (exchange.md §2): what OpenAPI documents."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .subjects import MAX_BATCH

log = logging.getLogger("safecredit.api")


class Listing(BaseModel):
    entry_id: str | None = None
    ground: str | None = None
    ground_name: str | None = None
    basis: str | None = Field(
        None, description="the legal basis of the entry's list (its regime's, or its department's)"
    )
    regime: str | None = Field(None, description="aq11 (应急管理部令第11号) | industry | … (rules.md §3)")
    decided: bool | None = Field(None, description="true: a written listing decision backs the entry; false: inferred")
    decision_no: str | None = None
    authority: str | None = None
    decision_date: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = Field(None, description="pending|listed|expired|repaired|objection_upheld|revoked")
    role: str | None = None


class Measure(BaseModel):
    matter: str | None = None
    name: str | None = None
    measure: str | None = None
    restricted_from: str | None = None
    restricted_until: str | None = Field(None, description="the day the measure lifts (exclusive); null: for life")
    for_life: bool = False
    basis: str | None = None
    source: str | None = Field(None, description="listing (a list entry) or ban (a person's statutory ban)")
    entry_id: str | None = None
    penalty_id: str | None = None
    implementing_department: str | None = None
    scope_industry: str | None = None


class RestrictionAnswer(BaseModel):
    code: str = Field(description="the code asked (a person's number masked but the last 4)")
    subject_type: Literal["unit", "person"]
    name: str | None = None
    restricted: bool
    as_of: str
    version: str | None = None
    matter: str | None = None
    known_at: str | None = None
    publication_as_of: str | None = None
    listings: list[Listing]
    measures: list[Measure]


SubjectType = Literal["unit", "person"]


class LookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        max_length=200, description="USCC, resident ID number, or (subject_type=person) another document number"
    )
    subject_type: SubjectType | None = None
    matter: str | None = Field(None, max_length=100)
    as_of: date | None = None
    known_at: date | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    codes: list[Annotated[str, Field(max_length=200)]] = Field(min_length=1, max_length=MAX_BATCH)  # as lookup
    subject_type: SubjectType | None = None
    matter: str | None = Field(None, max_length=100)
    as_of: date | None = None
    known_at: date | None = None


class BatchError(BaseModel):
    status: int
    detail: str
    type: str


class BatchItem(BaseModel):
    index: int
    code: str
    status: int
    answer: RestrictionAnswer | None = None
    error: BatchError | None = None


class BatchAnswer(BaseModel):
    version: str | None = None
    count: int
    restricted: int
    results: list[BatchItem]


class Page(BaseModel):
    feed: str
    version: str
    mode: Literal["full", "delta"]
    since_version: str | None = None
    limit: int
    count: int
    next_cursor: str | None = None
    items: list[dict[str, Any]]


class UnitVersion(BaseModel):
    uscc: str
    version: str
    as_of: str | None = None


class Record(UnitVersion):
    """One published row of a feed (its columns), with the version it comes from."""

    model_config = ConfigDict(extra="allow")


class IntermediaryAnswer(UnitVersion):
    ratings: list[dict[str, Any]]


class Explanation(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str
    id: str
    version: str


class FeedVersion(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: str | None = None
    generated_at: str | None = None
    result: str | None = None
    pruned: bool = False


class FeedEntry(BaseModel):
    name: str
    title: str | None = None
    scope: str | None = None  # None: any valid key reads it (the `codes` feed)
    latest: str | None = None
    as_of: str | None = None
    row_count: int | None = None
    files: list[str]
    versions: list[FeedVersion]


class FeedCatalogue(BaseModel):
    version: str | None = None
    generated_at: str | None = None
    feeds: list[FeedEntry]


class Health(BaseModel):
    status: Literal["ok", "no_publication"]
    version: str | None = None
    generated_at: str | None = None
    feeds: dict[str, dict[str, Any]]
    snapshot_build_ms: float | None = None
