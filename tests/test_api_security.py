"""The holes of issue 11, each probed the way the security review did: over real HTTP, against a
real uvicorn server on loopback (tests/api_server.py), SQLite service database unless said.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import test_api
from api_server import SCOPES, copy_home, running

data = test_api.data  # the fixture, resolved here with this module's `home`
is_problem = test_api.is_problem

# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def home(pipeline_run, tmp_path_factory) -> Path:
    return copy_home(pipeline_run["home"], tmp_path_factory.mktemp("sec-home"))


@pytest.fixture(scope="module")
def server(home):
    with running(home) as srv:
        yield srv


def make_key(server, name: str, scopes, rate: float = 10_000, burst: int = 10_000) -> str:
    return server.service.keys.create(name, list(scopes), rate_per_second=rate, burst=burst)[1]


def access_lines(caplog, n: int) -> list[str]:
    """The service's access-log lines (written once the answer is sent: poll, bounded)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(r.name == "safecredit.access" for r in caplog.records) < n:
        time.sleep(0.02)
    return [r.getMessage() for r in caplog.records if r.name == "safecredit.access"]


def audit_rows(server, where: str = "1=1") -> list[dict]:
    from sqlalchemy import text

    assert server.service.audit.flush()
    with server.service.keys.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(text(f"SELECT * FROM audit_log WHERE {where} ORDER BY id"))]


def normalised(text: str) -> str:
    """What a reader can rebuild from a line: decoded twice, half-width, separators dropped."""
    text = unicodedata.normalize("NFKC", unquote(unquote(text)))
    return re.sub(r"[\s\-_.+\u2010-\u2015\u2212]", "", text).upper()


# --------------------------------------------------------------------------------- 1. scopes


def test_explain_leaves_out_the_parts_the_keys_scopes_do_not_cover(server, data):
    feeds = data["index"]["feeds"]
    if "credit_scores" not in feeds or "premium_factors" not in feeds:
        pytest.skip("credit_scores / premium_factors not published")
    lists = make_key(server, "explain-lists", ["lists:read"])
    unit = data["unit"]  # listed (so lists:read has something to explain) and scored
    assert server.get(f"/v1/credit/{unit}", lists).status_code == 403
    assert server.get(f"/v1/premium-factors/{unit}", lists).status_code == 403
    body = server.get(f"/v1/explain/{unit}", lists).json()
    assert body["kind"] == "subject" and body["list_entries"]
    assert "credit_score" not in body and "premium_factor" not in body

    credit = make_key(server, "explain-credit", ["lists:read", "credit:read"])
    body = server.get(f"/v1/explain/{unit}", credit).json()
    assert "premium_factor" not in body
    every = make_key(server, "explain-all", SCOPES)
    full = server.get(f"/v1/explain/{unit}", every).json()
    assert "credit_score" in full and "premium_factor" in full
    assert body["credit_score"] == full["credit_score"]
    if server.get(f"/v1/credit/{unit}", every).status_code == 200:
        assert full["credit_score"]["uscc"] == unit and "score" in full["credit_score"]


# --------------------------------------------------------------------------------- 2. ID numbers in logs


def id_forms(pid: str) -> list[str]:
    fw = "".join(chr(ord(c) + 0xFEE0) for c in pid)
    return [
        f"{pid[:6]} {pid[6:14]} {pid[14:]}",
        f"{pid[:6]}-{pid[6:14]}-{pid[14:]}",
        fw,
        "".join(f"%{ord(c):02X}" for c in pid),
        "".join(f"%25{ord(c):02X}" for c in pid),
        quote(fw),
        pid.lower(),
    ]


def test_spaced_hyphenated_full_width_and_percent_encoded_id_numbers_are_masked_in_log_and_audit(
        server, data, caplog):
    pid = data["person"]
    key = make_key(server, "masking-probe", SCOPES)
    paths = []
    for form in id_forms(pid):
        q = form if "%" in form else quote(form)
        paths += [f"/v1/explain/{q}", f"/v1/blacklist?since_version={q}", f"/v1/restrictions/{q}",
                  f"/v1/feeds/blacklist/{q}/full.csv"]
    with caplog.at_level(logging.INFO, logger="safecredit.access"):
        for p in paths:
            server.get(p, key)
            server.get(p)  # without a key: logged and audited too
        lines = access_lines(caplog, 2 * len(paths))
    assert len(lines) >= 2 * len(paths)
    rows = audit_rows(server)
    dump = json.dumps([{k: str(v) for k, v in r.items()} for r in rows], ensure_ascii=False)
    for line in [*lines, dump]:
        assert pid[:14] not in normalised(line), line[:300]
    assert any(pid[-4:] in line and "/v1/explain/" in line for line in lines)


def test_masking_keeps_units_and_entry_ids_readable():
    from safecredit.api.masking import mask_ids_in_text

    for keep in ("91331203090000089W", "E0123456789abcdef", "/v1/feeds/blacklist/20261123T020000Z-3f9a1c/full.csv",
                 '2026-12-03 13:58:42,123 127.0.0.1:5555 "GET /v1/feeds" 200 1.2ms key=0123456789'):
        assert mask_ids_in_text(keep) == keep


# --------------------------------------------------------------------------------- 3. enumeration


def test_a_batch_is_charged_one_token_per_code(server, data):
    key = make_key(server, "enumerator", ["restrictions:read"], rate=1, burst=20)
    codes = [data["unit"]] * 1000
    r = server.post("/v1/restrictions/batch", key, json={"codes": codes})
    assert r.status_code == 200, r.text[:300]  # admitted: the bucket held min(1000, burst) tokens
    after = server.get(f"/v1/restrictions/{data['unit']}", key)
    body = is_problem(after, 429)
    assert int(after.headers["retry-after"]) >= 900  # the 980 tokens of debt, at 1/s
    assert "速率" in body["detail"] or "rate" in body["detail"]
    again = server.post("/v1/restrictions/batch", key, json={"codes": codes[:5]})
    is_problem(again, 429)

    small = make_key(server, "small-batches", ["restrictions:read"], rate=1, burst=10)
    assert server.post("/v1/restrictions/batch", small, json={"codes": [data["unit"]] * 10}).status_code == 200
    is_problem(server.post("/v1/restrictions/lookup", small, json={"code": data["unit"]}), 429)


def test_person_codes_count_against_a_daily_quota(home, data):
    from datetime import date

    from safecredit.codes import make_id_number

    persons = [make_id_number("330102", date(1970, 1, 1 + i % 28), i) for i in range(40)]
    with running(home, person_quota=50) as server:
        key = make_key(server, "quota-probe", ["restrictions:read"])
        assert server.post("/v1/restrictions/batch", key, json={"codes": persons}).status_code == 200
        body = is_problem(server.post("/v1/restrictions/batch", key, json={"codes": persons[:20]}), 429)
        assert "quota" in body["detail"] and "配额" in body["detail"]
        assert server.get(f"/v1/restrictions/{data['unit']}", key).status_code == 200  # units are not counted
        for p in persons[:10]:
            assert server.post("/v1/restrictions/lookup", key, json={"code": p}).status_code == 200
        is_problem(server.post("/v1/restrictions/lookup", key, json={"code": persons[0]}), 429)
