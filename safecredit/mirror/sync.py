"""Bring each feed of the local copy up to the source's latest version, verifying everything used.

For one feed holding version H, the versions the source serves newer than H are applied oldest
first: the manifest's signature must verify with the operator's public key, its
`previous_version` must be the version held (else there is a gap: pruned or missing versions), and
`delta.jsonl` must match the manifest's sha256 and size before any row moves. A gap, a version the
source answers 410/404 for, or a delta that does not fit the held rows → re-sync from the newest
`full.parquet` (verified the same way). A manifest or file that fails verification stops that feed
at its last good version and makes the run exit 1; other feeds carry on.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from safecredit.errors import UserError
from safecredit.publish import VerificationError, verify_manifest_signature
from safecredit.publish.versions import STATUS_OK, item_status

from .deltas import read_delta
from .errors import Gone, MirrorUsageError, MirrorVerificationFailed, SourceUnreachable
from .targets import Drift, Held


@dataclass
class FeedOutcome:
    feed: str
    before: str | None = None
    after: str | None = None
    applied: list[str] = field(default_factory=list)  # versions applied as deltas
    resynced_from: str | None = None  # version whose full.parquet was loaded
    reason: str | None = None  # why it re-synced
    error: UserError | None = None  # a verification failure: the feed stays at `after`
    skipped: str | None = None


def _failed(feed: str, version: str, name: str, en: str, zh: str) -> MirrorVerificationFailed:
    return MirrorVerificationFailed(
        f"{feed} 的版本 {version} 的 {name} 未通过验证：{zh}。本地副本保持在上一个验证通过的版本。",
        f"{name} of {feed} version {version} failed verification: {en}. The local copy stays at its last good version.",
    )


class FeedMirror:
    """One mirror run: a source, a target, the public key and a scratch directory for downloads."""

    def __init__(self, source, target, public_key_pem: str, workdir: Path):
        self.source, self.target, self.pem, self.workdir = source, target, public_key_pem, workdir

    # -- verified downloads ------------------------------------------------------------------
    def manifest(self, feed: str, version: str) -> tuple[dict[str, Any], str]:
        """The verified manifest of a version and the sha256 of its bytes (Gone if not served)."""
        path = self.workdir / f"{feed}-{version}-manifest.json"
        sha = self.source.fetch(feed, version, "manifest.json", path)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise _failed(feed, version, "manifest.json", f"not valid JSON ({exc})", "不是有效的 JSON") from exc
        if not isinstance(manifest, dict):
            raise _failed(feed, version, "manifest.json", "not a JSON object", "不是 JSON 对象")
        if manifest.get("feed") != feed or manifest.get("version") != version:
            raise _failed(
                feed,
                version,
                "manifest.json",
                f"it names {manifest.get('feed')}/{manifest.get('version')}",
                "清单中的数据集或版本不符",
            )
        try:
            verify_manifest_signature(manifest, self.pem)
        except VerificationError as exc:
            raise _failed(feed, version, "manifest.json", exc.en, exc.zh) from exc
        return manifest, sha

    def file(self, feed: str, version: str, manifest: dict[str, Any], name: str) -> Path:
        """A data file of a version, checked against the (verified) manifest's sha256 and size."""
        entry = next((f for f in manifest.get("files") or [] if f.get("name") == name), None)
        if entry is None:
            raise _failed(feed, version, "manifest.json", f"it does not list {name}", f"清单未列出 {name}")
        path = self.workdir / f"{feed}-{version}-{name}"
        sha = self.source.fetch(feed, version, name, path)
        if sha != entry.get("sha256") or path.stat().st_size != entry.get("size"):
            raise _failed(
                feed,
                version,
                name,
                f"sha256 {sha[:12]}… ({path.stat().st_size} bytes) does not match the manifest's "
                f"{str(entry.get('sha256'))[:12]}… ({entry.get('size')} bytes)",
                "sha256 或大小与清单不符",
            )
        return path

    # -- one feed ------------------------------------------------------------------------------
    def resync(
        self, out: FeedOutcome, version: str, reason: str, manifest: dict | None = None, sha: str | None = None
    ) -> None:
        feed = out.feed
        if manifest is None:
            manifest, sha = self.manifest(feed, version)
        parquet = self.file(feed, version, manifest, "full.parquet")
        try:
            self.target.replace(
                feed,
                version,
                sha,
                parquet,
                manifest.get("row_count"),
                manifest.get("columns"),
                manifest.get("id_columns") or [],
            )
        except Drift as exc:  # the full file itself disagrees with its signed manifest
            raise _failed(feed, version, "full.parquet", str(exc), "行数与清单不符") from exc
        finally:
            parquet.unlink(missing_ok=True)
        out.resynced_from, out.reason, out.after = version, reason, version

    def feed(self, feed: str, items: list[dict[str, Any]]) -> FeedOutcome:
        held = self.target.held(feed)
        out = FeedOutcome(feed, before=held.version if held else None, after=held.version if held else None)
        served = [i["version"] for i in items if item_status(i) == STATUS_OK]  # newest first
        if not served:
            out.skipped = "nothing published"
            return out
        latest = served[0]
        try:
            if held is None:
                self.resync(out, latest, "first mirror")
            elif held.version == latest:
                # nothing to apply; reading the manifest still checks the key's scope and the signature
                self.manifest(feed, latest)
            elif held.version > latest:  # the source went back (a restored exports tree): follow it
                self.resync(out, latest, f"the source's latest version is older than {held.version}")
            else:
                self.chain(out, held, served)
        except MirrorVerificationFailed as exc:
            out.error = exc
        except Gone as exc:
            raise SourceUnreachable(
                f"镜像过程中源站删除了 {feed} 的版本（{exc}），请重新运行。",
                f"The source removed a version of {feed} during the mirror ({exc}); run it again.",
            ) from exc
        return out

    def chain(self, out: FeedOutcome, held: Held, served: list[str]) -> None:
        """Apply the versions newer than `held` (ids sort by time), oldest first."""
        feed, latest = out.feed, served[0]
        for version in sorted(v for v in served if v > held.version):
            try:
                manifest, sha = self.manifest(feed, version)
            except Gone:
                return self.resync(out, latest, f"{version} is no longer served")
            if manifest.get("previous_version") != held.version:
                return self.resync(
                    out, latest, f"gap: {version} follows {manifest.get('previous_version')}, not {held.version}"
                )
            if manifest.get("columns") != held.published:
                self.resync(out, version, "columns changed", manifest, sha)
            else:
                try:
                    path = self.file(feed, version, manifest, "delta.jsonl")
                except Gone:
                    return self.resync(out, latest, f"the delta of {version} is no longer served")
                ids = manifest.get("id_columns") or []
                try:
                    delta = read_delta(path, held.schema, ids)
                except (ValueError, duckdb.Error) as exc:  # signed, but not in the held table's shape
                    return self.resync(out, latest, f"the delta of {version} does not read as the held columns ({exc})")
                finally:
                    path.unlink(missing_ok=True)
                try:
                    self.target.apply(feed, version, sha, delta, ids, manifest.get("row_count"), held)
                except Drift as exc:
                    return self.resync(out, latest, f"local copy does not fit the delta ({exc})")
                out.applied.append(version)
                out.after = version
            held = self.target.held(feed)
        return None


def mirror(
    source, target, public_key_pem: str, feeds: list[str] | None = None, workdir: Path | None = None
) -> list[FeedOutcome]:
    """Mirror `feeds` (default: every feed the source lists) into `target`; one outcome per feed."""
    catalogue = source.catalogue()
    if feeds:
        unknown = [f for f in feeds if f not in catalogue]
        if unknown:
            raise MirrorUsageError(
                f"源站没有数据集 {', '.join(unknown)}（可用：{', '.join(sorted(catalogue))}）。",
                f"The source has no feed {', '.join(unknown)} (available: {', '.join(sorted(catalogue))}).",
            )
    names, explicit = (list(feeds), True) if feeds else (sorted(catalogue), False)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="safecredit-mirror-", dir=workdir) as tmp:
        run = FeedMirror(source, target, public_key_pem, Path(tmp))
        for name in names:
            try:
                outcomes.append(run.feed(name, catalogue[name]))
            except MirrorUsageError as exc:
                # a feed outside the key's scopes: an error when asked for, skipped otherwise
                if explicit or name not in getattr(source, "forbidden", ()):
                    raise
                outcomes.append(FeedOutcome(name, skipped=f"not readable with this key ({exc.en})"))
    if outcomes and all(o.skipped and o.skipped.startswith("not readable") for o in outcomes):
        raise MirrorUsageError(
            "该密钥不能读取任何数据集：请向运营方申请 lists:read、credit:read 或 premium:read 权限。",
            "The key can read none of the feeds: ask the operator for lists:read, credit:read or premium:read.",
        )
    return outcomes
