"""HTML of the check page (Jinja2 templates beside this file) and the report as PDF.

Pages load only this service's own stylesheet and one small script (the print button); the
Content-Security-Policy says so, and nothing comes from outside (offline networks). The PDF is the
same report printed by the headless Debian `chromium` (`--print-to-pdf`) from a temporary file
with the stylesheet inlined: no network, no external service.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .checking import STATUS_NAMES, Check

HERE = Path(__file__).parent
STATIC = HERE / "static"
PDF_TIMEOUT = 120  # seconds: chromium's start and a 1,000-code report on a busy 2-core machine


def decision_kind(entry: dict[str, Any]) -> str:
    """决定 (a written listing decision backs the entry) or 推定 (the rules inferred it from the
    department's records, rules.md §3): the listing's `decided`. A publication made before entries
    carried it has no such field, and the page says so."""
    decided = entry.get("decided")
    if decided is None:
        return "未标注 (not given)"
    return "认定决定 decided" if decided else "规则推定 inferred"


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(status_names=STATUS_NAMES, decision_kind=decision_kind)
    return env


def render(template: str, **context: Any) -> tuple[str, str]:
    """(html, the style nonce the Content-Security-Policy must allow)."""
    nonce = secrets.token_urlsafe(16)
    return _env().get_template(template).render(nonce=nonce, **context), nonce


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"style-src 'self' 'nonce-{nonce}'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def chromium_path() -> str | None:
    configured = os.environ.get("SAFECREDIT_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return next((c for c in (shutil.which("chromium"), "/usr/bin/chromium") if c and Path(c).exists()), None)


class PdfUnavailable(RuntimeError):
    pass


def report_pdf(check: Check) -> bytes:
    """The printed report (A4, page numbers, the check id on every page) as PDF bytes."""
    chromium = chromium_path()
    if chromium is None:
        raise PdfUnavailable("chromium not found (Debian package `chromium`, or set SAFECREDIT_CHROMIUM)")
    html, _ = render("report.html", check=check, inline_css=(STATIC / "check.css").read_text("utf-8"), base="")
    with tempfile.TemporaryDirectory(prefix="sc-check-pdf-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",  # the page is our own, script-free HTML from a private temp dir
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=PDF_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(f"chromium did not print within {PDF_TIMEOUT} s") from None
        if not out.is_file() or out.stat().st_size == 0:
            raise PdfUnavailable(f"chromium printed nothing (exit {done.returncode})")
        return out.read_bytes()
