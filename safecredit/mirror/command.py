"""`safecredit mirror`: arguments to a mirror run, outcomes to lines and an exit code (operations.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from safecredit.publish import VerificationError
from safecredit.publish.signing import load_public_key

from .errors import MirrorUsageError
from .sources import open_source
from .sync import FeedOutcome, mirror
from .targets import open_target


def read_public_key(value: str | None) -> str:
    """The PEM text from a file path (or the PEM itself); refuses to run without one."""
    if not value:
        raise MirrorUsageError(
            "缺少 --public-key：没有运营方分发的公钥就无法验证清单签名，镜像拒绝运行"
            "（公钥由运营方用 `safecredit signing-key export` 导出）。",
            "--public-key is missing: without the operator's public key manifest signatures cannot be verified, "
            "so the mirror refuses to run (the operator exports it with `safecredit signing-key export`).",
        )
    if value.lstrip().startswith("-----BEGIN"):
        pem = value
    else:
        try:
            pem = Path(value).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise MirrorUsageError(
                f"无法读取公钥文件 {value}：{exc}", f"Cannot read the public key {value}: {exc}"
            ) from exc
    try:
        load_public_key(pem)
    except VerificationError as exc:
        raise MirrorUsageError(
            f"{value} 不是 Ed25519 PEM 公钥：{exc.zh}", f"{value} is not an Ed25519 PEM public key: {exc.en}"
        ) from exc
    return pem


def describe(o: FeedOutcome) -> str:
    if o.skipped:
        return f"{o.feed}: skipped ({o.skipped})"
    if o.error is not None:
        return f"{o.feed}: FAILED verification, kept at {o.after or '(nothing)'}"
    if o.before == o.after:
        return f"{o.feed}: up to date at {o.after}"
    parts = []
    if o.resynced_from:
        parts.append(f"full {o.resynced_from} ({o.reason})")
    if o.applied:
        parts.append(
            f"{len(o.applied)} delta(s) {o.applied[0]}…{o.applied[-1]}"
            if len(o.applied) > 1
            else f"delta {o.applied[0]}"
        )
    return f"{o.feed}: {o.before or '(empty)'} → {o.after}: " + ", then ".join(parts)


def run_mirror(
    source: str, into: str, public_key: str | None, feeds: str | None, key: str | None, echo: Callable[[str], None]
) -> list[FeedOutcome]:
    """Mirror and print one line per feed; raise the first verification failure (exit 1)."""
    pem = read_public_key(public_key)
    names = [f.strip() for f in feeds.split(",") if f.strip()] if feeds else None
    src = open_source(source, key or os.environ.get("SAFECREDIT_MIRROR_KEY"))
    target = open_target(into)
    try:
        outcomes = mirror(src, target, pem, names)
    finally:
        target.close()
    for o in outcomes:
        echo(describe(o))
    failed = [o.error for o in outcomes if o.error is not None]
    if failed:
        raise failed[0]
    return outcomes
