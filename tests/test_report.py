"""The publication report: written beside the feeds for every published version, self-contained,
and its charts actually draw (rendered with headless Chromium, pixels counted per chart colour)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from safecredit.report_html import SECTIONS, SIGNATURES

CHROMIUM = next((c for c in (shutil.which("chromium"), "/usr/bin/chromium") if c and Path(c).exists()), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian package `chromium`: `make system-deps`)"
)
WINDOW = (1280, 2400)  # the whole report of the test data fits


def published(pipeline_run) -> tuple[str, Path]:
    summary = pipeline_run["summary"]
    assert summary.published, summary.reasons
    return summary.version, Path(summary.exports)


def screenshot(page: Path, out: Path) -> Path:
    png = out / f"{page.stem}.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={out / 'chromium-profile'}",
            f"--screenshot={png}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert png.is_file() and png.stat().st_size > 1000
    return png


def read_png(path: Path) -> np.ndarray:
    """A non-interlaced 8-bit RGB/RGBA PNG as an (h, w, 3) array: zlib + the five row filters."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, hdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 0xFF
        elif f == 1:  # Sub: a running sum per channel
            cur = (np.cumsum(line.reshape(w, bpp), axis=0) & 0xFF).reshape(stride)
        else:  # Average / Paeth depend on the pixel to the left: one pass in Python
            cur_l = [0] * stride
            ln, up = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = up[i]
                if f == 3:
                    v = ln[i] + ((a + b) >> 1)
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    v = ln[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)
                cur_l[i] = v & 0xFF
            cur = np.array(cur_l, dtype=np.int32)
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)[:, :, :3]


def pixels_of(img: np.ndarray, colour: str, tol: int = 10) -> int:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(img.astype(np.int16) - rgb).max(axis=2) <= tol).sum())


# --------------------------------------------------------------------------------- tests


def test_report_is_written_beside_the_feeds_for_the_published_version(pipeline_run):
    version, exports = published(pipeline_run)
    page = exports / "reports" / f"{version}.html"  # where the API's /report looks for the version it serves
    assert page.is_file(), (
        sorted(p.name for p in (exports / "reports").glob("*")) if (exports / "reports").exists() else "no reports/"
    )
    html = page.read_text(encoding="utf-8")
    assert version in html and str(pipeline_run["as_of"]) in html
    for sid, zh, en in SECTIONS:
        assert f'id="{sid}"' in html and zh in html and en in html
    for chart in SIGNATURES:
        assert f'data-chart="{chart}"' in html
    for label in (
        "按列入事由",
        "by ground",
        "按行业门类",
        "by industry",
        "按行政区划",
        "by region",
        "信用评分",
        "credit score",
        "费率浮动系数",
        "premium factor",
        "按规则",
        "by rule",
    ):
        assert label in html
    # a single self-contained file: no scripts, stylesheets, images or fonts fetched from anywhere
    assert not re.search(r"<script|<link|<img|@import|url\(", html, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)


@needs_chromium
def test_report_charts_draw_in_headless_chromium(pipeline_run, tmp_path):
    version, exports = published(pipeline_run)
    img = read_png(screenshot(exports / "reports" / f"{version}.html", tmp_path))
    assert img.shape[1] == WINDOW[0]
    drawn = {chart: pixels_of(img, colour) for chart, colour in SIGNATURES.items()}
    # the clean run quarantines nothing: those two charts say "no data"; every other one drew
    for chart in SIGNATURES:
        if chart.startswith("quarantine-"):
            continue
        assert drawn[chart] > 300, (chart, drawn)
    assert drawn["listings-ground"] > 20_000 and drawn["score-hist"] > 2_000, drawn


@needs_chromium
def test_quarantine_and_stale_sources_show_in_the_charts(pipeline_run, tmp_path):
    """A warehouse copy with quarantined records and a held-back batch: the quarantine charts draw
    and the held batch is named. The same report judged 30 days later: every source is stale and
    its freshness bar turns the stale colour."""
    from datetime import datetime, timedelta, timezone

    from safecredit.report_html import _STALE, render_report, write_report
    from safecredit.warehouse import connect

    version, _ = published(pipeline_run)
    home = pipeline_run["home"]
    src = next(iter((home / "warehouse").glob("*.duckdb")))
    copy = tmp_path / "wh" / src.name
    copy.parent.mkdir()
    shutil.copy(src, copy)
    if src.with_suffix(src.suffix + ".wal").exists():
        shutil.copy(src.with_suffix(src.suffix + ".wal"), copy.with_suffix(copy.suffix + ".wal"))
    con = connect(copy)
    try:
        con.execute("""
            INSERT INTO quality.violations BY NAME
            SELECT d AS department, ds AS dataset, d || '-' || i AS record_id, i AS seq, 'F1' AS fetch_id,
                   r AS rule_id, 'quarantine' AS severity, 'X' AS field, '?' AS value,
                   '测试' AS message_zh, 'test' AS message_en
            FROM (VALUES ('zjj', 'penalties', 'PENALTIES-DATE-ORDER', 40), ('jtj', 'accidents', 'ACCIDENTS-LOSS', 15),
                         ('scj', 'penalties', 'PENALTIES-UNIT-CODE', 25)) t(d, ds, r, n),
                 range(n) s(i)""")
        con.execute("""INSERT INTO quality.batches BY NAME SELECT 'zjj' AS department, 'penalties' AS dataset,
                       'F-HELD' AS fetch_id, true AS held, '缺少必填字段' AS reason_zh,
                       'required field missing' AS reason_en""")
        html = render_report(con, home / "raw", version + "-q", pipeline_run["as_of"], "test")
        later = render_report(
            con,
            home / "raw",
            version + "-s",
            pipeline_run["as_of"],
            "test",
            generated_at=datetime.now(timezone.utc) + timedelta(days=30),
        )
    finally:
        con.close()
    assert "F-HELD" in html and "PENALTIES-DATE-ORDER" in html and "缺少必填字段" in html
    page = write_report(tmp_path / "exports", version + "-q", html)
    assert page == tmp_path / "exports" / "reports" / f"{version}-q.html"
    img = read_png(screenshot(page, tmp_path))
    for chart in ("quarantine-source", "quarantine-rule", "listings-ground", "freshness"):
        assert pixels_of(img, SIGNATURES[chart]) > 300, chart
    stale = read_png(screenshot(write_report(tmp_path / "exports", version + "-s", later), tmp_path))
    assert pixels_of(stale, _STALE) > pixels_of(img, _STALE) + 300  # the bars, beyond the limit line
    assert pixels_of(stale, SIGNATURES["freshness"]) < pixels_of(img, SIGNATURES["freshness"]) / 2


def test_report_lists_the_unconfirmed_policy_values(tmp_path):
    """Each publication report names the policy values not confirmed against their text."""
    from datetime import date

    import duckdb

    from safecredit.policy import policy_for, unconfirmed_values
    from safecredit.report_html import render_report

    policy = policy_for(None)
    items = unconfirmed_values(policy)
    html = render_report(
        duckdb.connect(), tmp_path / "raw", "v-test", date(2026, 11, 22), policy.version, unconfirmed=items
    )
    section = html.split('<section id="unconfirmed">')[1].split("</section>")[0]
    assert f"{len(items)} 项 entries" in section and len(items) > 10
    for it in items:
        assert f"<code>{it['where']}</code>" in section
    assert "令第36号是否保留安全生产领域一年最短公示期" in section
    assert '<section id="unconfirmed">' not in render_report(
        duckdb.connect(), tmp_path / "raw", "v-test", date(2026, 11, 22), policy.version
    )
