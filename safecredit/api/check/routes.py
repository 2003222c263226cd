"""Routes of the check page under `/check` (server-rendered; not part of the OpenAPI document).

Every request goes through `guard.visit` (session, key re-verified) and every POST through
`_refuse_forged` (origin and CSRF token) first. Routes are plain `def`: FastAPI runs them on
its thread pool, so the key lookups, the answer and the PDF printing never block the event loop.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import date, datetime, timezone
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from safecredit.api.keys import Principal, hash_key
from safecredit.api.masking import mask_path
from safecredit.api.middleware import MAX_BODY
from safecredit.api.problems import ApiProblem
from safecredit.api.subjects import MAX_BATCH, masked_code

from .checking import Check, matters_of, run_check
from .codes_input import CodeList, InputError, codes_from_form
from .guard import COOKIE, SCOPE, Visit, base_path, foreign, harden, sessions_of, set_cookie, token_matches, visit
from .render import STATIC, PdfUnavailable, render, report_pdf
from .sessions import CheckSession
from .xlsx import report_xlsx

log = logging.getLogger("safecredit.api.check")

_CHECK_ID = re.compile(r"^C\d{8}-[0-9a-f]{12}$")


def _page(request: Request, template: str, session: CheckSession | None, status: int = 200, **ctx: Any) -> Response:
    store = sessions_of(request.app)
    html, nonce = render(
        template, base=base_path(request), session=session, idle_minutes=round(store.idle_seconds / 60), **ctx
    )
    resp = HTMLResponse(html, status)
    harden(resp, nonce)
    if session is not None:
        set_cookie(resp, request, session.sid)
    return resp


def _redirect(request: Request, to: str, session: CheckSession | None = None) -> Response:
    resp = RedirectResponse(base_path(request) + to, status_code=303)
    harden(resp)
    if session is not None:
        set_cookie(resp, request, session.sid)
    return resp


def _sign_in(request: Request, v: Visit, *, error: str | None = None, status: int = 200) -> Response:
    store = sessions_of(request.app)
    session = v.session or store.new()
    notice = None
    if v.expired:
        notice = (
            f"会话闲置超过 {round(store.idle_seconds / 60)} 分钟已结束，请重新登录 · "
            "your session ended after the idle timeout: sign in again"
        )
    elif v.revoked:
        notice = "该密钥已失效（吊销或轮换），会话已结束 · the key was revoked or rotated: the session ended"
    return _page(request, "sign_in.html", session, status, error=error, notice=notice)


def _message(request: Request, session: CheckSession | None, status: int, title: str, message: str) -> Response:
    return _page(request, "message.html", session, status, title=title, message=message)


def _refuse_forged(request: Request, v: Visit, token: str) -> Response | None:
    """403 for a POST from another site or without the session's CSRF token; the sign-in page when
    the session behind the form has ended (idle timeout, revoked key, server restart)."""
    if not foreign(request) and v.session is None:
        return _sign_in(request, v if (v.expired or v.revoked) else Visit(None, expired=True), status=401)
    if foreign(request) or not token_matches(v.session, token):
        return _message(
            request,
            None,
            403,
            "请求被拒绝 · Refused",
            "跨站请求或表单已过期（缺少或不符的 CSRF 令牌），请回到核查页面重新提交 · "
            "a cross-site request, or a form without this session's CSRF token: reopen the page and submit again",
        )
    return None


def _audit(request: Request, p: Principal | None, route: str, path: str, code: str | None, status: int, **kw) -> None:
    svc = request.app.state.service
    svc.audit.record(
        at=kw.pop("at", datetime.now(timezone.utc)),
        consumer=p.consumer if p else None,
        key_id=p.key_id if p else None,
        method=request.method[:10],
        route=route,
        path=path[:2000],
        code=code,
        status=status,
        version=kw.pop("version", None),
        duration_ms=kw.pop("duration_ms", 0.0),
    )


def _form_page(request: Request, v: Visit, *, errors: list[str] | None = None, status: int = 200, form=None):
    svc = request.app.state.service
    with svc.snapshots.acquire() as snap:
        version = snap.version
        main = snap.feeds.get("restrictions") or snap.feeds.get("blacklist")
        cur = snap.cursor()
        try:
            matters = matters_of(snap, cur) if snap.feeds else []
        finally:
            cur.close()
    return _page(
        request,
        "form.html",
        v.session,
        status,
        errors=errors,
        form=form or {},
        matters=matters,
        version=version,
        publication_as_of=main.as_of.isoformat() if main and main.as_of else None,
        max_batch=MAX_BATCH,
        checks=list(reversed(v.session.checks.values())) if v.session else [],
    )


def _charge(request: Request, p: Principal, codes: list[str], subject_type: str | None) -> None:
    """The API batch's price: one rate token per code and the daily quota of person codes."""
    from safecredit.api.app import charge_codes  # app.py includes this router: import on use
    from safecredit.api.ratelimit import retry_after_header

    svc = request.app.state.service
    wait = svc.limiter.take(p.key_id, p.rate_per_second, p.burst)  # the token the middleware takes on /v1
    if wait > 0:
        raise ApiProblem(
            429,
            f"rate limit of {p.rate_per_second:g} codes/s exceeded; retry after {wait:.1f} s",
            "超过查询速率上限，请稍后重试",
            kind="rate-limited",
            headers={"Retry-After": retry_after_header(wait)},
        )
    charge_codes(svc, p, codes, subject_type)


def check_router() -> APIRouter:
    router = APIRouter(prefix="/check", include_in_schema=False)

    @router.get("")
    @router.get("/")
    def index(request: Request):
        v = visit(request)
        if v.principal is None:
            return _sign_in(request, v)
        return _form_page(request, v)

    @router.post("/sign-in")
    def sign_in(request: Request, key: str = Form("", max_length=400), csrf: str = Form("", max_length=200)):
        v = visit(request)
        refused = _refuse_forged(request, v, csrf)
        if refused is not None:
            return refused
        svc = request.app.state.service
        host = (request.client.host if request.client else "-") or "-"
        wait = svc.limiter.take(f"addr:{host}", svc.anon_rate, svc.anon_burst)  # before any database read
        if wait > 0:
            return _sign_in(request, v, error="登录尝试过于频繁，请稍后再试 · too many sign-ins: wait", status=429)
        token = key.strip()
        p = svc.keys.verify(token)
        route, path = "/check/sign-in", "/check/sign-in"
        if p is None:
            _audit(request, None, route, path, None, 401)
            return _sign_in(request, v, error="密钥无效或已吊销 · the key is not valid or was revoked", status=401)
        if SCOPE not in p.scopes:
            _audit(request, p, route, path, None, 403)
            return _sign_in(request, v, error=f"该密钥没有 {SCOPE} 权限 · this key lacks the scope {SCOPE}", status=403)
        session = sessions_of(request.app).sign_in(v.session, p.key_id, hash_key(token), p.consumer)
        _audit(request, p, route, path, None, 303)
        return _redirect(request, "", session)

    @router.post("/sign-out")
    def sign_out(request: Request, csrf: str = Form("", max_length=200)):
        v = visit(request)
        refused = _refuse_forged(request, v, csrf)
        if refused is not None:
            return refused
        sessions_of(request.app).end(v.session.sid)
        resp = _redirect(request, "")
        resp.delete_cookie(COOKIE, path=base_path(request))
        return resp

    @router.post("/checks")
    def new_check(
        request: Request,
        csrf: str = Form("", max_length=200),
        matter: str = Form("", max_length=100),
        as_of: str = Form("", max_length=20),
        subject_type: str = Form("", max_length=10),
        codes: str = Form("", max_length=MAX_BODY),
        column: str = Form("", max_length=100),
        file: UploadFile | None = File(None),
    ):
        t0 = time.perf_counter()
        v = visit(request)
        refused = _refuse_forged(request, v, csrf)
        if refused is not None:
            return refused
        if v.principal is None:
            return _sign_in(request, v, status=401)
        p = v.principal
        form = {"matter": matter, "as_of": as_of, "subject_type": subject_type, "codes": codes, "column": column}

        def again(status: int, *errors: str) -> Response:
            return _form_page(request, v, errors=list(errors), status=status, form=form)

        try:
            day = date.fromisoformat(as_of) if as_of.strip() else None
        except ValueError:
            return again(422, f"核查基准日格式应为 YYYY-MM-DD · the as-of date must be YYYY-MM-DD, not {as_of[:20]!r}")
        if subject_type not in ("", "unit", "person"):
            return again(422, "代码类型只能是单位或个人 · codes are units or persons")
        upload = file.file.read(MAX_BODY + 1) if file is not None and file.filename else None
        try:
            listed: CodeList = codes_from_form(codes, file.filename if file else None, upload, column)
        except InputError as exc:
            return again(422, f"{exc.zh} · {exc.en}")
        if not listed.codes and not listed.malformed:
            return again(422, "请粘贴或上传要核查的代码 · paste or upload the codes to check")
        svc = request.app.state.service
        if not svc.audit.accepting():
            return again(
                503, "审计日志暂时无法写入，暂停核查，请稍后重试 · the audit log cannot be written: retry later"
            )
        kind = subject_type or None
        # the audit row's query: what was asked (matter as typed, escaped by mask_path), how many codes
        asked = f"matter={matter}&codes={len(listed.codes)}&malformed={len(listed.malformed)}"
        try:
            if listed.codes:
                _charge(request, p, listed.codes, kind)
            with svc.snapshots.acquire() as snap:
                if not snap.feeds:
                    return again(503, "尚未发布任何数据 · nothing has been published yet")
                check = run_check(
                    snap,
                    svc.salt,
                    svc.home / "keys",
                    listed,
                    consumer=p.consumer,
                    key_id=p.key_id,
                    matter=matter or None,
                    as_of=day,
                    subject_type=kind,
                )
        except ApiProblem as exc:
            _audit(request, p, "/check/checks", mask_path("/check/checks", asked), None, exc.status)
            return again(exc.status, exc.detail)
        v.session.keep(check.check_id, check)
        shown = ",".join(masked_code(c) for c in listed.codes)
        _audit(
            request,
            p,
            "/check/checks",
            mask_path(f"/check/checks/{check.check_id}", asked),
            f"check {check.check_id} batch[{len(listed.codes)}]:{shown}",
            200,
            at=check.at,
            version=check.version,
            duration_ms=round((time.perf_counter() - t0) * 1000, 2),
        )
        return _redirect(request, f"/checks/{check.check_id}")

    def found(request: Request, check_id: str) -> tuple[Visit, Check | Response]:
        v = visit(request)
        if v.principal is None:
            return v, _sign_in(request, v, status=401)
        check = v.session.checks.get(check_id) if _CHECK_ID.match(check_id) else None
        if check is None:
            return v, _message(
                request,
                v.session,
                404,
                "没有该核查 · No such check",
                "本次会话中没有该核查编号（报告只在做核查的会话中保留；审计日志保留其记录） · "
                "no check of this id in this session (reports stay with the session that made them)",
            )
        return v, check

    @router.get("/checks/{check_id}.pdf")
    def check_pdf(request: Request, check_id: str):
        v, check = found(request, check_id)
        if isinstance(check, Response):
            return check
        try:
            pdf = report_pdf(check)
        except PdfUnavailable as exc:
            log.error("PDF of check %s failed: %s", check_id, exc)
            return _message(
                request,
                v.session,
                503,
                "PDF 暂不可用 · PDF unavailable",
                "服务器无法生成 PDF（需要 chromium），请用“打印核查报告”另存为 PDF · "
                "the server cannot print PDF (it needs chromium): use Print and save as PDF",
            )
        return _download(pdf, "application/pdf", f"check-report-{check_id}.pdf")

    @router.get("/checks/{check_id}.xlsx")
    def check_xlsx(request: Request, check_id: str):
        _, check = found(request, check_id)
        if isinstance(check, Response):
            return check
        return _download(
            report_xlsx(check),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            f"check-report-{check_id}.xlsx",
        )

    @router.get("/checks/{check_id}")
    def check_page(request: Request, check_id: str):
        v, check = found(request, check_id)
        if isinstance(check, Response):
            return check
        return _page(request, "report.html", v.session, check=check)

    @router.get("/check.css")
    def stylesheet():
        return FileResponse(STATIC / "check.css", media_type="text/css; charset=utf-8")

    @router.get("/check.js")
    def script():
        return FileResponse(STATIC / "check.js", media_type="text/javascript; charset=utf-8")

    return router


def _download(data: bytes, media_type: str, filename: str) -> Response:
    resp = Response(data, media_type=media_type)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    harden(resp)
    return resp
