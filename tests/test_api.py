"""The HTTP API of exchange.md §2 over a real uvicorn server on loopback.

The server serves a private copy of the session's published home (`pipeline_run`: exports and
keys, never the warehouse). Every test runs against both service databases: SQLite (the default)
and a throwaway PostgreSQL cluster (skipped only when its binaries are absent).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from api_server import SCOPES, ApiServer, codes_to_ask, copy_home, running, shared_cluster

PROBLEM = "application/problem+json"

# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pg_cluster(request):
    return shared_cluster(request.config)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "sqlite":
        return None
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"sc_api_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def home(pipeline_run, tmp_path_factory, backend) -> Path:
    return copy_home(pipeline_run["home"], tmp_path_factory.mktemp("api-home"))


@pytest.fixture(scope="module")
def server(home, backend):
    with running(home, backend) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server) -> dict:
    """A key per scope, one with every scope, one with every scope but each (for 403s)."""
    ks = server.service.keys
    out = {"all": ks.create("all-scopes", list(SCOPES), rate_per_second=10_000, burst=10_000)[1]}
    for s in SCOPES:
        out[s] = ks.create(f"only-{s}", [s], rate_per_second=10_000, burst=10_000)[1]
        out[f"not {s}"] = ks.create(f"not-{s}", [x for x in SCOPES if x != s], rate_per_second=10_000, burst=10_000)[1]
    return out


@pytest.fixture(scope="module")
def data(pipeline_run, home) -> dict:
    return codes_to_ask(pipeline_run, home)


def both_code() -> str:
    """An 18-digit code valid both as a resident ID number and as a USCC (about 1 in 31 are)."""
    from safecredit.codes import is_valid_uscc, make_id_number

    d = date(1980, 1, 1)
    for i in range(5000):
        code = make_id_number("110101", d + timedelta(days=i // 10), i % 10)
        if is_valid_uscc(code):
            return code
    raise AssertionError("no code valid as both found")


def is_problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    assert "Traceback" not in r.text
    return body


# --------------------------------------------------------------------------------- scopes


def routes(data) -> list[tuple[str, str, dict | None, str | None, set[int]]]:
    """(method, path, json body, scope, statuses a right key may get)."""
    feeds = data["index"]["feeds"]
    v = data["version"]
    has = lambda f: f in feeds  # noqa: E731 — other engineers are still adding feeds
    uscc = data.get("scored_unit") or data["unit"]
    return [
        ("GET", f"/v1/restrictions/{data['unit']}", None, "restrictions:read", {200}),
        ("POST", "/v1/restrictions/lookup", {"code": data["unit"]}, "restrictions:read", {200}),
        ("POST", "/v1/restrictions/batch", {"codes": [data["unit"]]}, "restrictions:read", {200}),
        ("GET", "/v1/blacklist?limit=5", None, "lists:read", {200}),
        ("GET", f"/v1/credit/{uscc}", None, "credit:read", {200} if has("credit_scores") else {404}),
        ("GET", f"/v1/premium-factors/{uscc}", None, "premium:read", {200} if has("premium_factors") else {404}),
        ("GET", "/v1/premium-factors?limit=5", None, "premium:read", {200} if has("premium_factors") else {404}),
        (
            "GET",
            f"/v1/intermediaries/{data.get('agency') or uscc}",
            None,
            "lists:read",
            {200} if has("intermediary_ratings") else {404},
        ),
        ("GET", "/v1/penalties?limit=5", None, "lists:read", {200} if has("penalties_public") else {404}),
        ("GET", f"/v1/explain/{data['entry']}", None, "lists:read", {200}),
        ("GET", "/v1/feeds", None, None, {200}),
        ("GET", f"/v1/feeds/blacklist/{v}/full.csv", None, "lists:read", {200}),
        ("GET", f"/v1/feeds/blacklist/{v}/manifest.json", None, "lists:read", {200}),
        *(
            [
                (
                    "GET",
                    f"/v1/feeds/credit_scores/{feeds['credit_scores']['latest']}/full.jsonl",
                    None,
                    "credit:read",
                    {200},
                )
            ]
            if has("credit_scores")
            else []
        ),
        ("GET", "/report", None, "lists:read", {200}),  # every successful publication has its report
    ]


def test_every_route_answers_401_403_and_200_by_key_and_scope(server, keys, data):
    for method, path, body, scope, ok in routes(data):
        call = server.get if method == "GET" else server.post
        kw = {"json": body} if body is not None else {}
        r = call(path, None, **kw)
        assert is_problem(r, 401)["type"].endswith("unauthorized"), path
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
        is_problem(call(path, "sck_0000000000_not-a-real-key", **kw), 401)
        if scope is not None:
            body403 = is_problem(call(path, keys[f"not {scope}"], **kw), 403)
            assert scope in body403["detail"]
            r = call(path, keys[scope], **kw)
        else:
            for s in SCOPES:  # any valid key
                assert call(path, keys[s], **kw).status_code == 200, path
            r = call(path, keys["all"], **kw)
        assert r.status_code in ok, (path, r.status_code, r.text[:300])
        if r.status_code >= 400:
            is_problem(r, r.status_code)


def test_healthz_needs_no_key_and_names_the_version(server, data):
    r = server.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["version"] == data["version"]
    assert body["feeds"]["blacklist"]["version"] == data["version"]


# --------------------------------------------------------------------------------- restrictions


def test_a_call_leaves_no_reference_cycle_of_the_middleware_for_the_garbage_collector(server, keys, data):
    # the per-request closures of ServiceMiddleware referred to each other: every call left a cycle
    # that only a collection freed (one every ~20 calls under load)
    import gc
    import types

    key = keys["restrictions:read"]
    assert server.get(f"/v1/restrictions/{data['unit']}", key).status_code == 200
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        statuses = [
            server.get(path, key).status_code
            for path in (f"/v1/restrictions/{data['unit']}?matter=public_bidding", "/v1/restrictions/x", "/v1/feeds")
        ]
        gc.collect()
        # functions only: an object of the middleware's may also be garbage as a part of what a
        # cycle elsewhere (uvicorn's connection) holds, which is not a cycle of its own
        ours = [
            o
            for o in gc.garbage
            if isinstance(o, types.FunctionType) and str(o.__module__).startswith("safecredit.api.middleware")
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert statuses == [200, 422, 200] and ours == []


def test_restriction_answer_for_a_listed_unit(server, keys, data):
    r = server.get(f"/v1/restrictions/{data['unit']}", keys["restrictions:read"])
    assert r.status_code == 200
    a = r.json()
    assert {"code", "subject_type", "name", "restricted", "as_of", "version", "listings", "measures"} <= set(a)
    assert a["code"] == data["unit"] and a["subject_type"] == "unit" and a["name"]
    assert a["restricted"] is True and a["version"] == data["version"]
    assert a["as_of"] == data["index"]["feeds"]["blacklist"]["as_of"]
    assert a["listings"] and {
        "entry_id",
        "ground",
        "basis",
        "regime",
        "decided",
        "decision_no",
        "authority",
        "start_date",
        "end_date",
        "status",
    } <= set(a["listings"][0])
    assert all(x["regime"] in ("aq11", "industry") and isinstance(x["decided"], bool) for x in a["listings"])
    assert any(x["status"] == "listed" for x in a["listings"])
    m = a["measures"][0]
    assert {"matter", "name", "restricted_until", "basis"} <= set(m)
    matters = {x["matter"] for x in a["measures"]}
    assert "government_procurement" in matters

    one = server.get(f"/v1/restrictions/{data['unit']}?matter=government_procurement", keys["all"]).json()
    assert one["restricted"] is True and {x["matter"] for x in one["measures"]} == {"government_procurement"}
    assert one["listings"] == a["listings"]
    person_only = server.get(f"/v1/restrictions/{data['unit']}?matter=principal_role", keys["all"]).json()
    assert person_only["restricted"] is False and person_only["measures"] == []
    # 进出口 and 出入境 (rules.md §4) are matters of the measures table: asked like the fixed ones
    customs = server.get(f"/v1/restrictions/{data['unit']}?matter=import_export", keys["all"]).json()
    assert customs["restricted"] is True and [x["matter"] for x in customs["measures"]] == ["import_export"]
    assert "海关总署令第251号" in customs["measures"][0]["basis"]
    exit_ = server.get(f"/v1/restrictions/{data['unit']}?matter=exit_entry", keys["all"])
    assert exit_.status_code == 200 and exit_.json()["restricted"] is False
    bad = is_problem(server.get(f"/v1/restrictions/{data['unit']}?matter=space_travel", keys["all"]), 422)
    assert "space_travel" in bad["detail"] and "government_procurement" in bad["detail"]
    # the body form answers the same
    same = server.post("/v1/restrictions/lookup", keys["all"], json={"code": data["unit"]}).json()
    assert same == a


def test_persons_by_id_number_are_answered_masked(server, keys, data):
    pid = data["person"]
    r = server.post("/v1/restrictions/lookup", keys["all"], json={"code": pid})
    assert r.status_code == 200, r.text
    a = r.json()
    assert a["subject_type"] == "person" and a["restricted"] is True and a["listings"]
    assert a["code"] == "*" * 14 + pid[-4:]
    assert pid not in r.text
    g = server.get(f"/v1/restrictions/{pid}", keys["all"])
    assert g.status_code == 200 and g.json() == a and pid not in g.text
    # lower-case x / spaces / full-width digits are the same person
    fw = "".join(chr(ord(c) + 0xFEE0) for c in pid[:6]) + " " + pid[6:].lower()
    assert server.post("/v1/restrictions/lookup", keys["all"], json={"code": fw}).json() == a


def test_code_forms_decide_the_subject_type(server, keys, data):
    k = keys["restrictions:read"]
    u = data["unit"]
    wrong = u[:17] + ("0" if u[17] != "0" else "1")
    body = is_problem(server.get(f"/v1/restrictions/{wrong}", k), 422)
    assert "check" in body["detail"] and "校验" in body["detail"]
    assert server.get(f"/v1/restrictions/{wrong}?subject_type=unit", k).status_code == 422
    both = both_code()
    body = is_problem(server.get(f"/v1/restrictions/{both}", k), 409)
    assert "subject_type" in body["detail"]
    assert both not in json.dumps(body)  # not echoed
    for st in ("unit", "person"):
        r = server.get(f"/v1/restrictions/{both}?subject_type={st}", k)
        assert r.status_code == 200 and r.json()["subject_type"] == st and r.json()["restricted"] is False
    if data.get("clean_unit"):
        a = server.get(f"/v1/restrictions/{data['clean_unit']}", k).json()
        assert a["restricted"] is False and a["listings"] == [] and a["measures"] == [] and a["name"]
    passport = server.post("/v1/restrictions/lookup", k, json={"code": "E12345678", "subject_type": "person"})
    assert passport.status_code == 200 and passport.json()["restricted"] is False
    assert passport.json()["code"] == "*****5678"
    is_problem(server.post("/v1/restrictions/lookup", k, json={"code": "E12345678"}), 422)
    bad_id = data["person"][:17] + ("0" if data["person"][17] != "0" else "1")
    is_problem(server.post("/v1/restrictions/lookup", k, json={"code": bad_id, "subject_type": "person"}), 422)
    is_problem(server.get("/v1/restrictions/hello%20world", k), 422)
    is_problem(server.get(f"/v1/restrictions/{u}?subject_type=robot", k), 422)


def test_as_of_applies_todays_knowledge_to_a_past_date(server, keys, data):
    k = keys["all"]
    pub_as_of = data["index"]["feeds"]["blacklist"]["as_of"]
    for code in data["some_units"]:  # the publication's own date answers like no date at all
        assert (
            server.get(f"/v1/restrictions/{code}?as_of={pub_as_of}", k).json()
            == server.get(f"/v1/restrictions/{code}", k).json()
        )
    if data["lifted"]:
        code, start, end, decided = data["lifted"]
        now = server.get(f"/v1/restrictions/{code}", k).json()
        during = server.get(f"/v1/restrictions/{code}?as_of={start}", k).json()
        assert during["as_of"] == start.isoformat()
        assert any(x["status"] == "listed" for x in during["listings"]) and during["restricted"] is True
        assert all(m["restricted_from"] <= start.isoformat() for m in during["measures"])
        before = server.get(f"/v1/restrictions/{code}?as_of={decided - timedelta(days=1)}", k).json()
        assert before["restricted"] is False
        lifted = [x for x in now["listings"] if x["status"] in ("repaired", "expired")]
        assert lifted
    is_problem(server.get(f"/v1/restrictions/{data['unit']}?as_of=2026-02-30", k), 422)


def test_the_timelines_at_the_publication_date_give_the_published_answers(home, data):
    """Every subject's answer from the listing and restriction timelines taken at the publication's
    own date (what another as_of is answered from) is exactly its published answer."""
    from safecredit.api.answer_sources import served_source
    from safecredit.api.restrictions import _parts_read_now, restriction_answers
    from safecredit.api.snapshot import build_snapshot
    from safecredit.api.subjects import Subject

    snap = build_snapshot(home / "exports")
    try:
        cur = snap.cursor()
        subjects = [
            Subject(sid, st, sid)
            for st, sid in cur.execute(
                'SELECT DISTINCT subject_type, subject_id FROM "blacklist" ORDER BY ALL'
            ).fetchall()
        ]
        src = served_source(snap)
        published = _parts_read_now(snap, cur, src, subjects, None)
        from_timelines = _parts_read_now(snap, cur, src, subjects, src.as_of)
        answered = restriction_answers(snap, cur, subjects, as_of=src.as_of - timedelta(days=1))
    finally:
        snap.close()
    assert len(published) == len(subjects) > 10 and any(p.measures for p in published)
    mismatched = [(s.code, p, t) for s, p, t in zip(subjects, published, from_timelines) if p != t]
    assert not mismatched, mismatched[:2]
    assert all(a["as_of"] == (src.as_of - timedelta(days=1)).isoformat() for a in answered)


def test_the_served_answers_come_from_the_index_and_equal_the_rows_read_now(home, data):
    """A served snapshot answers every subject of the publication's own date from its answer index,
    without a query (a cursor that refuses to run one), and the index holds exactly what reading
    the published rows now gives (the path `safecredit check` and `known_at` take)."""
    from safecredit.api.restrictions import restriction_answers, warm
    from safecredit.api.snapshot import build_snapshot
    from safecredit.api.subjects import Subject

    class NoQueries:
        def execute(self, *a, **kw):
            raise AssertionError("the answer index was bypassed: a query ran")

    snap = build_snapshot(home / "exports")
    try:
        cur = snap.cursor()
        keys = cur.execute('SELECT DISTINCT subject_type, subject_id FROM "blacklist" ORDER BY ALL').fetchall()
        subjects = [Subject(sid, st, sid) for st, sid in keys] + [Subject(data["clean_unit"] or "", "unit", "x")]
        read_now = restriction_answers(snap, cur, subjects)  # no index yet: the rows are read
        warm(snap)
        indexed = restriction_answers(snap, NoQueries(), subjects, matter=None)
        narrowed = restriction_answers(snap, NoQueries(), subjects, matter="public_bidding")
    finally:
        snap.close()
    assert len(indexed) > 10 and indexed == read_now
    assert any(a["restricted"] for a in indexed)
    for whole, part in zip(indexed, narrowed):
        assert part["measures"] == [m for m in whole["measures"] if m["matter"] == "public_bidding"]
        assert part["restricted"] == bool(part["measures"])


def test_known_at_answers_from_what_was_published_then(server, keys, data):
    k = keys["all"]
    r = server.get(f"/v1/restrictions/{data['unit']}?known_at=2001-01-01", k)
    detail = is_problem(r, 410)["detail"]  # the data did not exist then (bilingual)
    assert "2001-01-01" in detail and "first publication" in detail and "首次发布" in detail
    today = server.get(f"/v1/restrictions/{data['unit']}?known_at={date.today() + timedelta(days=1)}", k).json()
    assert today["version"] == data["version"] and today["restricted"] is True
    assert today["known_at"] == (date.today() + timedelta(days=1)).isoformat()


def test_batch_answers_in_order_with_per_code_errors(server, keys, data):
    k = keys["restrictions:read"]
    codes = [data["unit"], "nonsense", data["person"], both_code(), data.get("clean_unit") or data["unit"]]
    r = server.post("/v1/restrictions/batch", k, json={"codes": codes})
    assert r.status_code == 200
    b = r.json()
    assert b["count"] == 5 and b["version"] == data["version"]
    assert [x["index"] for x in b["results"]] == list(range(5))
    assert [x["status"] for x in b["results"]] == [200, 422, 200, 409, 200]
    assert b["results"][0]["answer"]["restricted"] is True
    assert b["results"][2]["answer"]["subject_type"] == "person"
    assert b["results"][1]["error"]["status"] == 422 and b["results"][1]["answer"] is None
    assert data["person"] not in r.text
    assert b["restricted"] == sum(1 for x in b["results"] if x["answer"] and x["answer"]["restricted"])
    big = server.post("/v1/restrictions/batch", k, json={"codes": [data["unit"]] * 1000, "matter": "honours"})
    assert big.status_code == 200 and big.json()["count"] == 1000
    is_problem(server.post("/v1/restrictions/batch", k, json={"codes": [data["unit"]] * 1001}), 422)
    is_problem(server.post("/v1/restrictions/batch", k, json={"codes": []}), 422)
    is_problem(server.post("/v1/restrictions/batch", k, json={"codes": [data["unit"]], "matter": "x"}), 422)


# --------------------------------------------------------------------------------- lists and files


def test_blacklist_pages_cover_the_feed_in_entry_order(server, keys, data):
    k = keys["lists:read"]
    seen, cursor, pages = [], None, 0
    while True:
        r = server.get("/v1/blacklist", k, params={"limit": 40, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        p = r.json()
        assert p["mode"] == "full" and p["version"] == data["version"] and p["count"] == len(p["items"]) <= 40
        seen += [x["entry_id"] for x in p["items"]]
        pages += 1
        cursor = p["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(set(seen)) == len(seen) == data["row_count"]
    assert pages == -(-data["row_count"] // 40)
    text = server.get("/v1/blacklist?limit=1000", k).text
    assert not [m for m in re.findall(r"\d{17}[\dX]", text) if _is_id(m)]
    is_problem(server.get("/v1/blacklist?cursor=garbage", k), 400)
    is_problem(server.get("/v1/blacklist?limit=0", k), 422)
    is_problem(server.get("/v1/blacklist?limit=100000", k), 422)
    empty = server.get(f"/v1/blacklist?since_version={data['version']}", k).json()
    assert empty["mode"] == "delta" and empty["items"] == [] and empty["next_cursor"] is None
    is_problem(server.get("/v1/blacklist?since_version=20000101T000000Z-abcdef", k), 404)
    is_problem(server.get("/v1/blacklist?since_version=yesterday", k), 422)


def test_penalties_and_premium_pages(server, keys, data):
    feeds = data["index"]["feeds"]
    if "penalties_public" in feeds:
        p = server.get("/v1/penalties?limit=7", keys["lists:read"]).json()
        assert p["feed"] == "penalties_public" and p["count"] == min(7, feeds["penalties_public"]["row_count"])
        ids = [x["penalty_id"] for x in p["items"]]
        assert ids == sorted(ids)
    r = server.get("/v1/premium-factors?limit=3", keys["premium:read"])
    if "premium_factors" in feeds:
        assert r.status_code == 200 and r.json()["count"] == min(3, feeds["premium_factors"]["row_count"])
    else:
        assert "premium_factors" in is_problem(r, 404)["detail"]


def test_explain_names_a_decision_only_entry_as_the_cli_does(server, keys, home, data):
    """The simulator's 应急 department sends one listing decision that disagrees with its penalty: its
    entry stands alone, and /v1/explain says so with the gaps `safecredit explain` shows (rules.md §3)."""
    import pyarrow.parquet as pq

    from safecredit.explain import entry_gaps

    latest = data["index"]["feeds"]["blacklist"]["latest"]
    rows = pq.read_table(home / "exports" / "blacklist" / latest / "full.parquet").to_pylist()
    decision_only = [r for r in rows if r["role"].startswith("decided ")]
    assert decision_only
    body = server.get(f"/v1/explain/{decision_only[0]['entry_id']}", keys["lists:read"]).json()
    assert [g["gap"] for g in body["gaps"]] == ["decision_only"] and body["entry"]["decided"] is True
    assert body["gaps"] == entry_gaps(body["entry"])
    listed = server.get(f"/v1/explain/{data['entry']}", keys["lists:read"]).json()
    assert listed["gaps"] == entry_gaps(listed["entry"])


def test_credit_and_explain(server, keys, data):
    if "credit_scores" in data["index"]["feeds"]:
        c = server.get(f"/v1/credit/{data['scored_unit']}", keys["credit:read"]).json()
        assert c["uscc"] == data["scored_unit"] and c["version"] == data["version"]
        assert "score" in c and "grade" in c
        is_problem(server.get(f"/v1/credit/{data['scored_unit'][:17]}Z", keys["credit:read"]), 422)
        past = server.get(f"/v1/credit/{data['scored_unit']}?as_of=2001-01-01", keys["credit:read"])
        is_problem(past, 404)
    e = server.get(f"/v1/explain/{data['entry']}", keys["lists:read"])
    assert e.status_code == 200
    body = e.json()
    assert body["kind"] == "list_entry" and body["entry"]["entry_id"] == data["entry"]
    subj = server.get(f"/v1/explain/{data['unit']}", keys["lists:read"]).json()
    assert subj["kind"] == "subject" and subj["list_entries"]
    is_problem(server.get("/v1/explain/E0000000000000000", keys["lists:read"]), 404)
    assert not [m for m in re.findall(r"\d{17}[\dX]", e.text) if _is_id(m)]


def _is_id(s: str) -> bool:
    from safecredit.codes import is_valid_id_number

    return is_valid_id_number(s)


def test_feed_files_are_served_by_scope_and_never_outside_the_root(server, keys, home, data):
    v = data["version"]
    k = keys["lists:read"]
    r = server.get(f"/v1/feeds/blacklist/{v}/full.csv", k)
    assert r.status_code == 200 and r.content == (home / "exports" / "blacklist" / v / "full.csv").read_bytes()
    assert r.headers["content-type"].startswith("text/csv")
    m = server.get(f"/v1/feeds/blacklist/{v}/manifest.json", k).json()
    assert m["version"] == v and m["feed"] == "blacklist"
    (home / "exports" / "secret.txt").write_text("no")
    for bad in (
        f"/v1/feeds/blacklist/{v}/..%2F..%2Fsecret.txt",
        f"/v1/feeds/blacklist/{v}/report.exe",
        "/v1/feeds/blacklist/..%2F..%2F/full.csv",
        f"/v1/feeds/nosuchfeed/{v}/full.csv",
        "/v1/feeds/blacklist/20000101T000000Z-abcdef/full.csv",
        f"/v1/feeds/..%2Fkeys/{v}/full.csv",
        f"/v1/feeds/blacklist/{v}/%2Fetc%2Fpasswd",
    ):
        r = server.get(bad, keys["all"])
        assert r.status_code == 404, (bad, r.status_code)
        assert r.headers["content-type"].startswith(PROBLEM)
    if "credit_scores" in data["index"]["feeds"]:
        cv = data["index"]["feeds"]["credit_scores"]["latest"]
        is_problem(server.get(f"/v1/feeds/credit_scores/{cv}/full.csv", k), 403)
        assert server.get(f"/v1/feeds/credit_scores/{cv}/full.csv", keys["credit:read"]).status_code == 200
    cat = server.get("/v1/feeds", keys["premium:read"]).json()
    names = {f["name"]: f for f in cat["feeds"]}
    assert names["blacklist"]["latest"] == v and names["blacklist"]["scope"] == "lists:read"
    assert names["blacklist"]["versions"][0]["version"] == v


def test_every_error_is_problem_json(server, keys):
    is_problem(server.get("/nowhere"), 404)
    is_problem(server.http.delete(server.url + "/healthz"), 405)
    r = server.post(
        "/v1/restrictions/lookup", keys["all"], data="{not json", headers={"Content-Type": "application/json"}
    )
    is_problem(r, 422)
    pid_like = "110101199003074578"
    r = server.post("/v1/restrictions/lookup", keys["all"], json={"code": 12345, "extra": pid_like})
    body = is_problem(r, 422)
    assert pid_like not in r.text and body["errors"]
    docs = server.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text  # offline networks: nothing fetched outside
    for asset in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', docs.text):
        r = server.get(asset)
        assert r.status_code == 200 and len(r.content) > 1000, asset
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    spec = server.get("/openapi.json").json()
    assert "/v1/restrictions/{code}" in spec["paths"] and "Problem" in spec["components"]["schemas"]


# --------------------------------------------------------------------------------- limits, audit, logs


def test_rate_limit_answers_429_with_retry_after(server):
    key = server.service.keys.create("tiny-limit", ["lists:read"], rate_per_second=0.5, burst=2)[1]
    statuses = [server.get("/v1/feeds", key).status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429]
    r = server.get("/v1/feeds", key)
    is_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    # other keys are not affected
    other = server.service.keys.create("tiny-limit-2", ["lists:read"])[1]
    assert server.get("/v1/feeds", other).status_code == 200


def test_audit_rows_name_consumer_route_code_version_and_never_a_full_id(server, keys, data):
    from sqlalchemy import text

    pid = data["person"]
    marker = server.service.keys.create("auditor", ["restrictions:read"])[1]
    server.get(f"/v1/restrictions/{pid}", marker)
    server.post("/v1/restrictions/lookup", marker, json={"code": pid})
    server.get(f"/v1/restrictions/{data['unit']}", marker)
    server.get("/v1/blacklist", marker)  # 403
    server.get("/v1/feeds", None)  # 401
    assert server.service.audit.flush()
    with server.service.keys.engine.connect() as c:
        rows = [
            dict(r._mapping)
            for r in c.execute(
                text(
                    "SELECT consumer, route, path, code, status, version, method FROM audit_log "
                    "WHERE consumer = 'auditor' ORDER BY at, id"
                )
            )
        ]
        dump = json.dumps([list(map(str, r)) for r in c.execute(text("SELECT * FROM audit_log"))])
        anon = c.execute(text("SELECT count(*) FROM audit_log WHERE consumer IS NULL AND status = 401")).scalar()
    assert [r["status"] for r in rows] == [200, 200, 200, 403]
    assert rows[0]["route"] == "/v1/restrictions/{code}" and rows[1]["route"] == "/v1/restrictions/lookup"
    assert rows[0]["code"] == rows[1]["code"] == "*" * 14 + pid[-4:]
    assert rows[2]["code"] == data["unit"] and rows[2]["version"] == data["version"]
    assert pid not in rows[0]["path"] and rows[0]["path"].endswith(pid[-4:])
    assert pid not in dump
    assert anon >= 1


def test_access_log_masks_id_numbers(server, keys, data, caplog):
    pid = data["person"]
    with caplog.at_level(logging.INFO, logger="safecredit.access"):
        server.get(f"/v1/restrictions/{pid}", keys["all"])
        server.get(f"/v1/blacklist?since_version={pid}", keys["all"])
        server.get(f"/v1/restrictions/{data['unit']}", keys["all"])
        deadline = time.monotonic() + 5  # the line is written once the answer has been sent
        while time.monotonic() < deadline and sum(r.name == "safecredit.access" for r in caplog.records) < 3:
            time.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if r.name == "safecredit.access"]
    assert len(lines) >= 3
    assert not any(pid in line for line in lines)
    assert any(pid[-4:] in line and "/v1/restrictions/" in line for line in lines)
    assert any(data["unit"] in line for line in lines)  # a unit's code is not personal data


# --------------------------------------------------------------------------------- switching


def test_old_snapshot_closes_after_its_last_request_and_a_bad_publication_is_not_served(pipeline_run, tmp_path):
    from safecredit.api.snapshot_manager import SnapshotManager
    from safecredit.publish import Publisher

    home = copy_home(pipeline_run["home"], tmp_path / "h")
    mgr = SnapshotManager(home / "exports", poll_interval=3600)
    mgr.start()
    try:
        first = mgr.current()
        with mgr.acquire() as held:
            assert held is first
            new = Publisher(home / "exports", home / "keys").restore(first.version).version
            assert mgr.changed() and mgr.refresh() and mgr.current().version == new
            # the request that still holds the old snapshot goes on reading it
            assert held.cursor().execute('SELECT count(*) FROM "blacklist"').fetchone()[0] > 0
            assert not held._closed
        assert first._closed  # closed by the release of its last request
        # an index naming a version whose files are missing: the build fails, the current one stays
        index_path = home / "exports" / "index.json"
        good = index_path.read_text(encoding="utf-8")
        index = json.loads(good)
        index["feeds"]["blacklist"]["latest"] = "20990101T000000Z-abcdef"
        index_path.write_text(json.dumps(index), encoding="utf-8")
        assert mgr.refresh() is False and mgr.last_error and mgr.current().version == new
        index_path.write_text(good, encoding="utf-8")
        mgr.refresh()
        assert mgr.last_error is None and mgr.current().version == new
    finally:
        mgr.stop()


def test_snapshot_switches_to_a_new_publication_without_a_failed_request(pipeline_run, tmp_path, backend, data):
    """Publish twice while clients hammer the server: every request answers 200, the new version is
    served without a restart, cursors keep their version, and a pruned version answers 410."""
    from safecredit.publish import Publisher

    home = copy_home(pipeline_run["home"], tmp_path / "switch-home")
    srv = ApiServer(home, backend, poll_interval=0.2).start()
    try:
        key = srv.service.keys.create("hammer", list(SCOPES), rate_per_second=100_000, burst=100_000)[1]
        old = data["version"]
        first = srv.get("/v1/blacklist?limit=10", key).json()
        assert first["version"] == old and first["next_cursor"]
        stop = threading.Event()
        results: list[tuple[int, str | None]] = []
        errors: list[str] = []

        def hammer(paths):
            import requests

            s = requests.Session()
            while not stop.is_set():
                for p in paths:
                    try:
                        r = s.get(srv.url + p, headers={"Authorization": f"Bearer {key}"}, timeout=30)
                        body = r.json()
                        results.append((r.status_code, body.get("version")))
                        if r.status_code != 200:
                            errors.append(f"{p}: {r.status_code} {r.text[:200]}")
                    except Exception as exc:  # noqa: BLE001 — every failure counts
                        errors.append(f"{p}: {type(exc).__name__}: {exc}")

        threads = [
            threading.Thread(target=hammer, args=(paths,))
            for paths in (
                [f"/v1/restrictions/{data['unit']}", "/v1/blacklist?limit=50"],
                ["/healthz", f"/v1/explain/{data['entry']}"],
                [f"/v1/restrictions/{data['unit']}?as_of=2025-06-01", "/v1/feeds"],
            )
        ]
        for t in threads:
            t.start()
        time.sleep(0.3)
        builds = srv.service.snapshots.builds
        new = Publisher(home / "exports", home / "keys").restore(old).version
        assert new != old
        srv.wait_for_version(new)
        kept = srv.get("/v1/blacklist", key, params={"cursor": first["next_cursor"], "limit": 10}).json()
        assert kept["version"] == old and kept["items"][0]["entry_id"] > first["items"][-1]["entry_id"]
        time.sleep(0.3)
        newest = Publisher(home / "exports", home / "keys", retention=2).restore(new).version  # prunes `old`
        srv.wait_for_version(newest)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors[:5]
        seen = {v for _, v in results}
        assert {old, new, newest} <= seen and len(results) > 50, (seen, len(results))
        assert srv.service.snapshots.builds >= builds + 2

        # the cursor taken on `old` keeps paging `old`... until `old` is pruned: then 410
        r = srv.get("/v1/blacklist", key, params={"cursor": first["next_cursor"], "limit": 10})
        assert r.status_code == 410 and r.headers["content-type"].startswith(PROBLEM)
        is_problem(srv.get(f"/v1/blacklist?since_version={old}", key), 410)
        is_problem(srv.get(f"/v1/feeds/blacklist/{old}/full.csv", key), 410)
        delta = srv.get(f"/v1/blacklist?since_version={new}", key).json()
        assert delta["version"] == newest and delta["items"] == []  # same content restored
        mid = srv.get("/v1/blacklist?limit=10", key).json()
        nxt = srv.get("/v1/blacklist", key, params={"cursor": mid["next_cursor"], "limit": 10}).json()
        assert nxt["version"] == newest and nxt["items"][0]["entry_id"] > mid["items"][-1]["entry_id"]
    finally:
        srv.stop()


def test_incentives_injury_insurance_and_an_authoritys_candidates(server, keys, data, home):
    """exchange.md §2's routes for the seeds' other duties: 守信激励 and 工伤保险 by unit, each under its
    scope, and GET /v1/candidates answering only the queue of the authority its key is bound to."""
    import duckdb

    unit = data["scored_unit"]
    inc = server.get(f"/v1/incentives/{unit}", keys["restrictions:read"])
    assert inc.status_code == 200, inc.text
    assert inc.json()["uscc"] == unit and "eligible" in inc.json()
    is_problem(server.get(f"/v1/incentives/{unit}", keys["premium:read"]), 403)
    # a qualifying unit's restriction answer links to its incentives; a listed unit's does not
    latest = json.loads((home / "exports" / "index.json").read_text(encoding="utf-8"))["feeds"]["credit_scores"]
    scores = home / "exports" / "credit_scores" / latest["latest"] / "full.parquet"
    eligible = duckdb.sql(f"SELECT uscc FROM '{scores}' WHERE incentive_eligible ORDER BY uscc LIMIT 1").fetchall()
    assert eligible, "no unit of the test publication qualifies for incentives"
    qualifying = eligible[0][0]
    answer = server.get(f"/v1/restrictions/{qualifying}", keys["restrictions:read"]).json()
    assert answer["incentives"] == f"/v1/incentives/{qualifying}" and not answer["restricted"]
    followed = server.get(answer["incentives"], keys["restrictions:read"]).json()
    assert followed["uscc"] == qualifying and followed["eligible"] is True
    listed = server.get(f"/v1/restrictions/{data['unit']}", keys["restrictions:read"]).json()
    assert listed["restricted"] and "incentives" not in listed
    inj = server.get(f"/v1/injury-insurance/{unit}", keys["premium:read"])
    assert inj.status_code == 200, inj.text
    assert inj.json()["uscc"] == unit and inj.json()["version"] == data["version"]
    is_problem(server.get(f"/v1/injury-insurance/{unit}", keys["credit:read"]), 403)

    index = json.loads((home / "exports" / "index.json").read_text(encoding="utf-8"))
    latest = index["feeds"]["listing_candidates"]["latest"]
    parquet = home / "exports" / "listing_candidates" / latest / "full.parquet"
    queues = dict(
        duckdb.sql(f"SELECT authority_code, count(*) FROM '{parquet}' GROUP BY ALL ORDER BY 2 DESC, 1").fetchall()
    )
    assert queues, "the test publication has no listing candidates"
    authority, expected = next(iter(queues.items()))
    ks = server.service.keys
    bound = ks.create("某应急管理局", ["candidates:read"], authority=authority)[1]
    unbound = ks.create("未绑定机关", ["candidates:read"])[1]
    ids, cursor = [], None
    while True:
        page = server.get("/v1/candidates" + (f"?cursor={cursor}" if cursor else "?limit=7"), bound)
        assert page.status_code == 200, page.text
        body = page.json()
        assert {x["authority_code"] for x in body["items"]} <= {authority}
        ids += [x["entry_id"] for x in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(ids) == expected == len(set(ids)) and ids == sorted(ids)
    assert "--authority" in is_problem(server.get("/v1/candidates", unbound), 403)["detail"]
    is_problem(server.get("/v1/candidates", keys["all"]), 403)  # without candidates:read


def test_unit_answers_join_the_lean_feeds_back(server, keys, data, pipeline_run, tmp_path):
    """Issue 10 §6: the per-unit feeds are published lean (components, worksheets and labels apart);
    /v1/credit, /v1/premium-factors, /v1/injury-insurance and /v1/incentives still answer the whole
    rule-table row: components, worksheets and labels as the rules computed them."""
    import shutil

    import duckdb

    from safecredit.publish.formats import json_value

    unit = data["scored_unit"]
    wh = tmp_path / "warehouse.duckdb"  # a copy: never touch the pipeline's file
    shutil.copyfile(pipeline_run["home"] / "warehouse" / "warehouse.duckdb", wh)
    routes = {
        "credit_scores": (f"/v1/credit/{unit}", "credit:read"),
        "premium_factors": (f"/v1/premium-factors/{unit}", "premium:read"),
        "injury_insurance_factors": (f"/v1/injury-insurance/{unit}", "premium:read"),
        "incentives": (f"/v1/incentives/{unit}", "restrictions:read"),
    }
    with duckdb.connect(str(wh), read_only=True) as w:
        for feed, (route, scope) in routes.items():
            cur = w.execute(f"SELECT * EXCLUDE (as_of) FROM rules.{feed} WHERE uscc = ?", [unit])
            expected = json.loads(json.dumps(json_value(dict(zip([d[0] for d in cur.description], cur.fetchone())))))
            answer = server.get(route, keys[scope])
            assert answer.status_code == 200, answer.text
            got = {k: v for k, v in answer.json().items() if k in expected}
            assert got == expected, feed
    assert expected["conditions"] and all(c["label"] for c in expected["conditions"])
