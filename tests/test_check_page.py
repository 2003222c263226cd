"""The 信用核查 page (/check, issue 14 §1) in Debian's headless chromium, driven by Playwright
(`executable_path`: no browser download), against a real uvicorn server over a copy of the
session's published home."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
import requests
from api_server import codes_to_ask, copy_home, running

CHROMIUM = next((c for c in (shutil.which("chromium"), "/usr/bin/chromium") if c and Path(c).exists()), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian package `chromium`: `make system-deps`)"
)


@pytest.fixture(scope="module")
def home(pipeline_run, tmp_path_factory) -> Path:
    return copy_home(pipeline_run["home"], tmp_path_factory.mktemp("check-home"))


@pytest.fixture(scope="module")
def server(home):
    with running(home) as srv:
        yield srv


@pytest.fixture(scope="module")
def data(pipeline_run, home) -> dict:
    return codes_to_ask(pipeline_run, home)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()


def new_key(server, consumer: str, scopes=("restrictions:read",)) -> tuple[str, str]:
    info, key = server.service.keys.create(consumer, list(scopes), rate_per_second=10_000, burst=10_000)
    return info["key_id"], key


def sign_in(page, server, key: str) -> None:
    page.goto(server.url + "/check")
    page.fill("#key", key)
    page.click("#sign-in")
    page.wait_for_selector("#run-check")


def restricting_matter(server, key: str, code: str) -> str:
    """A matter the listed unit is restricted for, asked of the API itself."""
    answer = server.post("/v1/restrictions/lookup", key, json={"code": code}).json()
    assert answer["restricted"], answer
    return answer["measures"][0]["matter"]


def incentive_unit(home: Path, data: dict) -> str | None:
    """A unit that qualifies for 守信激励 in the published credit_scores, if the data has one."""
    import duckdb

    latest = data["index"]["feeds"].get("credit_scores", {}).get("latest")
    if latest is None:
        return None
    path = home / "exports" / "credit_scores" / latest / "full.parquet"
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT min(uscc) FROM read_parquet('{path}') WHERE incentive_eligible").fetchall()[0][0]
    finally:
        con.close()


def pdf_pages(data: bytes) -> int:
    assert data[:5] == b"%PDF-", data[:20]
    return len(re.findall(rb"/Type\s*/Page[^s]", data))


@needs_chromium
def test_sign_in_check_a_list_print_and_sign_out(server, home, data, page):
    key_id, key = new_key(server, "市公共资源交易中心")
    matter = restricting_matter(server, key, data["unit"])
    sign_in(page, server, key)
    cookie = next(c for c in page.context.cookies() if c["name"] == "sc_check")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # http here
    assert key not in page.content()

    person = data["person"]
    rewarded = incentive_unit(home, data)
    pasted = [data["unit"], "91ABC", person, data["clean_unit"], data["unit"].lower()]  # a duplicate, lower case
    pasted += [rewarded] if rewarded else []
    page.select_option("#matter", matter)
    page.fill("#codes", "\n".join(pasted))
    page.click("#run-check")
    page.wait_for_selector("#results")

    check_id = page.inner_text("#check-id").strip()
    assert re.fullmatch(r"C\d{8}-[0-9a-f]{12}", check_id)
    assert page.url.endswith(f"/check/checks/{check_id}") and key not in page.url
    html = page.content()
    assert key not in html and person not in html  # the person's number is masked but its last 4
    unit_row = page.locator(f'tr.row[data-code="{data["unit"]}"]')
    assert "受限" in unit_row.inner_text()
    detail = unit_row.locator("xpath=following-sibling::tr[1]").inner_text()
    entry = server.post("/v1/restrictions/lookup", key, json={"code": data["unit"], "matter": matter}).json()
    assert entry["listings"][0]["entry_id"] in detail  # the entry behind the restriction, with its basis
    decided = entry["listings"][0]["decided"]  # whether a written decision backs it (rules.md §3)
    assert decided is not None and ("认定决定" if decided else "规则推定") in detail
    assert page.locator(f'tr.row[data-code="{"*" * 14 + person[-4:]}"]').count() == 1
    assert "不受限" in page.locator(f'tr.row[data-code="{data["clean_unit"]}"]').inner_text()
    assert page.locator("tr.row").count() == 3 + bool(rewarded)  # the duplicate answered once
    if rewarded:
        assert page.inner_text(f'tr.row[data-code="{rewarded}"] td.incentive').startswith("符合")
    assert page.inner_text(f'tr.row[data-code="{data["unit"]}"] td.incentive') == "—"  # a listed unit
    malformed = page.inner_text("#malformed")
    assert "91ABC" in malformed and "18" in malformed
    assert "重复 1 个" in page.inner_text("#frame")
    assert re.fullmatch(r"[0-9a-f]{64}", page.inner_text("#fingerprint").strip())
    assert page.inner_text("#version").startswith(data["version"])

    printed = page.pdf(format="A4", print_background=True)  # the print stylesheet, as the browser prints it
    assert pdf_pages(printed) >= 1
    with page.expect_download() as dl:
        page.click("#pdf")
    assert pdf_pages(Path(dl.value.path()).read_bytes()) >= 1  # the server's PDF (headless chromium)
    with page.expect_download() as dl:
        page.click("#xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes()), read_only=True)
    cells = [str(v) for row in wb["核查结果"].iter_rows(values_only=True) for v in row if v is not None]
    assert check_id in cells and data["unit"] in cells and person not in cells

    svc = server.service
    assert svc.audit.flush()
    from sqlmodel import Session, select

    from safecredit.api.models import AuditLog

    with Session(svc.keys.engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.route == "/check/checks")).all()
    audited = [r for r in rows if check_id in (r.code or "")]
    assert len(audited) == 1
    row = audited[0]
    assert row.consumer == "市公共资源交易中心" and row.key_id == key_id and row.status == 200
    n = 3 + bool(rewarded)
    assert f"matter={matter}" in row.path and f"codes={n}&" in row.path and f"batch[{n}]" in row.code
    assert person not in row.code and person[-4:] in row.code

    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    page.goto(server.url + f"/check/checks/{check_id}")
    assert page.locator("#sign-in").count() == 1 and page.locator("#results").count() == 0


@needs_chromium
def test_a_session_ends_when_idle_or_when_its_key_is_revoked(server, data, page):
    from safecredit.api.check import sessions_of

    store = sessions_of(server.app)
    key_id, key = new_key(server, "市采购中心")
    sign_in(page, server, key)
    real = store.clock
    try:
        store.clock = lambda: real() + store.idle_seconds + 1  # the idle timeout passes, no sleep
        page.goto(server.url + "/check")
        assert "会话闲置" in page.inner_text("#notice") and page.locator("#run-check").count() == 0
    finally:
        store.clock = real
    sign_in(page, server, key)
    page.fill("#codes", data["unit"])
    server.service.keys.revoke(key_id)
    page.click("#run-check")  # a form sent after the key's revocation: the sign-in page, nothing checked
    assert "吊销" in page.inner_text("#notice") and page.locator("#results").count() == 0
    page.goto(server.url + "/check")
    assert page.locator("#run-check").count() == 0


def _signed_in_http(server, key: str) -> tuple[requests.Session, str]:
    """A plain HTTP client signed in like a browser: (client, the session's CSRF token)."""
    http = requests.Session()
    first = http.get(server.url + "/check")
    token = re.search(r'name="csrf" value="([^"]+)"', first.text).group(1)
    r = http.post(server.url + "/check/sign-in", data={"key": key, "csrf": token}, allow_redirects=True)
    assert r.status_code == 200 and 'id="run-check"' in r.text
    return http, re.search(r'name="csrf" value="([^"]+)"', r.text).group(1)


@needs_chromium
def test_cross_site_posts_and_oversized_lists_are_refused(server, data, page):
    _, key = new_key(server, "市审批窗口")
    http, token = _signed_in_http(server, key)
    form = {"codes": data["unit"], "matter": ""}
    url = server.url + "/check/checks"
    assert http.post(url, data=form, allow_redirects=False).status_code == 403  # no CSRF token
    assert http.post(url, data={**form, "csrf": "forged"}, allow_redirects=False).status_code == 403
    foreign = http.post(url, data={**form, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "跨站" in foreign.text
    ok = http.post(url, data={**form, "csrf": token}, headers={"Origin": server.url}, allow_redirects=False)
    assert ok.status_code == 303 and "/check/checks/C" in ok.headers["location"]

    too_many = "\n".join(f"CODE{i:05d}" for i in range(1001))
    r = http.post(url, data={"codes": too_many, "csrf": token})
    assert r.status_code == 422 and "最多核查 1000 个" in r.text and "at most 1,000 codes" in r.text

    # the browser: a form on another site posting to /check carries no session cookie (SameSite=Strict)
    sign_in(page, server, key)
    other = page.context.new_page()
    other.goto("about:blank")
    other.set_content(
        f'<form method="post" action="{url}"><input name="codes" value="{data["unit"]}"></form>'
        "<script>document.forms[0].submit()</script>"
    )
    other.wait_for_url(url)
    assert "请求被拒绝" in other.content()


def test_behind_https_the_cookie_is_secure(server):
    # uvicorn trusts X-Forwarded-Proto from loopback (a TLS-terminating proxy on the same host)
    r = requests.get(server.url + "/check", headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 200 and "; secure" in r.headers["set-cookie"].lower()
    assert "; secure" not in requests.get(server.url + "/check").headers["set-cookie"].lower()


def test_a_check_is_charged_per_code_like_the_api_batch(server, data):
    info, key = server.service.keys.create("市采购中心-限速", ["restrictions:read"], rate_per_second=0.001, burst=3)
    http, token = _signed_in_http(server, key)
    codes = "\n".join(data["some_units"][:3])
    first = http.post(server.url + "/check/checks", data={"codes": codes, "csrf": token})
    assert first.status_code == 200 and 'id="results"' in first.text
    second = http.post(server.url + "/check/checks", data={"codes": data["unit"], "csrf": token})
    assert second.status_code == 429 and "超过查询速率上限" in second.text  # the first check spent 3 tokens
    assert server.post("/v1/restrictions/lookup", key, json={"code": data["unit"]}).status_code == 429


def test_an_uploaded_sheet_is_read_by_its_header(server, data):
    from openpyxl import Workbook

    _, key = new_key(server, "市公共资源交易中心-上传")
    http, token = _signed_in_http(server, key)
    wb = Workbook()
    wb.active.append(["投标人", "统一社会信用代码"])
    wb.active.append(["甲公司", data["unit"]])
    wb.active.append(["乙公司", "not-a-code"])
    buf = io.BytesIO()
    wb.save(buf)
    files = {"file": ("投标人名单.xlsx", buf.getvalue(), "application/octet-stream")}
    r = http.post(server.url + "/check/checks", data={"csrf": token}, files=files)
    assert r.status_code == 200, r.text[:500]
    assert f'data-code="{data["unit"]}"' in r.text and "列 统一社会信用代码" in r.text
    assert '<td>3</td><td class="mono">not-a-code</td>' in r.text  # listed back with its row


def test_a_gbk_csv_is_read_by_a_named_column_and_nothing_is_dropped():
    from safecredit.api.check.codes_input import InputError, codes_from_form
    from safecredit.codes import make_uscc

    unit = make_uscc("9", "1", "440300", "192203821")
    sheet = f"名称,信用代码\n甲公司,{unit}\n乙公司,\n丙公司,{unit}\n丁公司,91ABC\n".encode("gb18030")
    got = codes_from_form("", "名单.csv", sheet, "信用代码")
    assert got.codes == [unit] and got.lines == [2] and got.duplicates == 1 and got.header == "信用代码"
    assert [(m.line, m.shown) for m in got.malformed] == [(5, "91ABC")] and "18" in got.malformed[0].reason
    with pytest.raises(InputError) as named:
        codes_from_form("", "名单.csv", sheet, "证件号码")
    assert "证件号码" in named.value.zh and "no column named" in named.value.en
    with pytest.raises(InputError):
        codes_from_form("", "名单.pdf", b"%PDF-1.7", None)
