"""Read side of the exports root: what the API, the CLI and consumers' tools use.

Readers follow `index.json` / `<feed>/versions.json`; a version is served only when its item is a
success that is not pruned, so a directory renamed into place but not yet recorded (or a crash
leftover) is never handed out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from . import versions as V
from .delta import compute_delta
from .errors import UnsafePath, VerificationError, VersionNotFound, VersionPruned
from .feeds import FEED_NAME_RE, FEEDS, FeedSpec
from .formats import ALL_FILES, DATA_FILES, MANIFEST, read_jsonl, sha256_file
from .fsutil import read_json
from .signing import verify_manifest_signature

INDEX = "index.json"
VERSIONS = "versions.json"


@dataclass
class VerifyReport:
    feed: str
    version: str
    files: list[str] = field(default_factory=list)
    key_id: str | None = None
    ok: bool = True  # a report is returned only when everything verified; failures raise


class FeedStore:
    """Read-only access to an exports root."""

    def __init__(self, exports_root: Path | str, *, specs: Mapping[str, FeedSpec] | None = None):
        self.root = Path(exports_root)
        self.specs: Mapping[str, FeedSpec] = specs if specs is not None else FEEDS

    # -- catalogue -------------------------------------------------------------------------
    def index(self) -> dict[str, Any] | None:
        path = self.root / INDEX
        return read_json(path) if path.exists() else None

    def feed_names(self) -> list[str]:
        """Feeds known to the registry or present on disk (a directory with versions.json)."""
        names = set(self.specs)
        if self.root.is_dir():
            names |= {
                p.name
                for p in self.root.iterdir()
                if FEED_NAME_RE.match(p.name) and (p / VERSIONS).is_file() and not p.is_symlink()
            }
        return sorted(names)

    def versions(self, feed: str) -> dict[str, Any]:
        self._check_feed_name(feed)
        path = self.root / feed / VERSIONS
        if not path.exists():
            return V.empty_versions()
        try:
            return read_json(path)
        except json.JSONDecodeError as exc:
            raise VerificationError(f"{path} is not valid JSON: {exc}", f"{path} 不是有效的 JSON") from exc

    def latest(self, feed: str) -> str | None:
        """The feed's last successful version, or None if it has none."""
        return self.versions(feed).get("last_successful")

    def status(self, feed: str, version: str) -> str:
        """ "ok" | "pruned" | "failed" | "unknown" (never raises for odd input: "unknown")."""
        if not isinstance(feed, str) or not FEED_NAME_RE.match(feed) or not V.is_version_id(version):
            return V.STATUS_UNKNOWN
        return V.item_status(V.find_item(self.versions(feed), version))

    def versions_since(self, feed: str, since_version: str) -> list[str]:
        """Served versions newer than `since_version`, oldest first (VersionPruned if it is gone)."""
        self._require_ok(feed, since_version)
        served = V.served_versions(self.versions(feed))
        return list(reversed(served[: served.index(since_version)]))

    # -- files -----------------------------------------------------------------------------
    def _check_feed_name(self, feed: Any) -> None:
        if not isinstance(feed, str) or not FEED_NAME_RE.match(feed):
            raise UnsafePath(f"not a feed name: {feed!r}", f"无效的数据集名称：{feed!r}")

    def _require_ok(self, feed: str, version: str) -> None:
        self._check_feed_name(feed)
        if not V.is_version_id(version):
            raise UnsafePath(f"not a version id: {version!r}", f"无效的版本号：{version!r}")
        if feed not in self.specs and not (self.root / feed / VERSIONS).is_file():
            raise VersionNotFound(f"unknown feed {feed!r}", f"未知数据集 {feed!r}")
        st = self.status(feed, version)
        if st == V.STATUS_PRUNED:
            raise VersionPruned(
                f"version {version} of {feed} was pruned by retention; re-sync from the latest full files",
                f"{feed} 的版本 {version} 已按保留策略删除，请从最新全量文件重新同步",
            )
        if st != V.STATUS_OK:
            what = "failed (nothing was published)" if st == V.STATUS_FAILED else "unknown"
            raise VersionNotFound(f"version {version} of {feed} is {what}", f"{feed} 没有可用的版本 {version}")

    def version_dir(self, feed: str, version: str) -> Path:
        """The directory of a served version (checked like `safe_file_path`)."""
        self._require_ok(feed, version)
        path = self.root / feed / version
        self._check_no_symlinks(path)
        if not path.is_dir():
            raise VersionNotFound(
                f"version {version} of {feed} is missing on disk", f"{feed} 的版本 {version} 在磁盘上缺失"
            )
        return path

    def safe_file_path(self, feed: str, version: str, name: str) -> Path:
        """Path of one file of a served version; refuses anything but the known files.

        Raises UnsafePath for malformed/unknown names, `..`, absolute paths, separators or
        symlinks; VersionPruned (410) / VersionNotFound (404) for versions not served.
        """
        if not isinstance(name, str) or name not in ALL_FILES:
            raise UnsafePath(
                f"not a feed file name: {name!r} (one of {', '.join(ALL_FILES)})", f"无效的文件名：{name!r}"
            )
        path = self.version_dir(feed, version) / name
        self._check_no_symlinks(path)
        if not path.is_file():
            raise VersionNotFound(f"{feed}/{version}/{name} is missing", f"{feed}/{version}/{name} 不存在")
        return path

    def _check_no_symlinks(self, path: Path) -> None:
        root = self.root.resolve()
        rel = path.relative_to(self.root)
        cur = self.root
        for part in rel.parts:
            cur = cur / part
            if cur.is_symlink():
                raise UnsafePath(
                    f"refusing a symlink inside the exports root: {rel}", f"拒绝访问导出目录中的符号链接：{rel}"
                )
        if not path.resolve().is_relative_to(root):
            raise UnsafePath(f"path leaves the exports root: {rel}", f"路径超出导出目录：{rel}")

    def read_manifest(self, feed: str, version: str | None = None) -> dict[str, Any]:
        """The manifest of `version` (default: the latest successful one)."""
        version = version or self.latest(feed)
        if version is None:
            raise VersionNotFound(f"feed {feed} has no published version", f"数据集 {feed} 尚未发布")
        return read_json(self.safe_file_path(feed, version, MANIFEST))

    def read_records(self, feed: str, version: str) -> list[dict[str, Any]]:
        return read_jsonl(self.safe_file_path(feed, version, "full.jsonl"))

    def read_delta(self, feed: str, version: str) -> list[dict[str, Any]]:
        return read_jsonl(self.safe_file_path(feed, version, "delta.jsonl"))

    def read_table(self, feed: str, version: str) -> pa.Table:
        return pq.read_table(self.safe_file_path(feed, version, "full.parquet"))

    def diff(self, feed: str, from_version: str, to_version: str | None = None) -> list[dict[str, Any]]:
        """Net delta lines from one served version to another (default: the latest)."""
        to_version = to_version or self.latest(feed)
        if to_version is None:
            raise VersionNotFound(f"feed {feed} has no published version", f"数据集 {feed} 尚未发布")
        id_columns = self.read_manifest(feed, to_version).get("id_columns") or self.specs[feed].id_columns
        return compute_delta(self.read_records(feed, from_version), self.read_records(feed, to_version), id_columns)

    def verify(self, feed: str, version: str, public_key_pem: str | bytes) -> VerifyReport:
        return verify_version(self.root, feed, version, public_key_pem)


def verify_version(exports_root: Path | str, feed: str, version: str, public_key_pem: str | bytes) -> VerifyReport:
    """Check a version directory: manifest identity and signature, every file's size and sha256,
    no missing or extra files. Returns a VerifyReport; raises VerificationError saying what is
    wrong (UnsafePath / VersionNotFound for bad names or a missing directory).
    """
    store = FeedStore(exports_root)
    store._check_feed_name(feed)
    if not V.is_version_id(version):
        raise UnsafePath(f"not a version id: {version!r}", f"无效的版本号：{version!r}")
    vdir = store.root / feed / version
    store._check_no_symlinks(vdir)
    if not vdir.is_dir():
        raise VersionNotFound(f"no directory for {feed}/{version}", f"{feed}/{version} 目录不存在")

    def fail(en: str, zh: str) -> VerificationError:
        return VerificationError(f"{feed}/{version}: {en}", f"{feed}/{version}：{zh}")

    try:
        manifest = read_json(vdir / MANIFEST)
    except (OSError, json.JSONDecodeError) as exc:
        raise fail(f"manifest.json unreadable: {exc}", "manifest.json 无法读取") from exc
    if manifest.get("feed") != feed or manifest.get("version") != version:
        raise fail(f"manifest names {manifest.get('feed')}/{manifest.get('version')}", "清单中的数据集或版本不符")
    verify_manifest_signature(manifest, public_key_pem)  # raises VerificationError

    listed = {f.get("name"): f for f in manifest.get("files", [])}
    if set(listed) != set(DATA_FILES):
        raise fail(f"manifest lists {sorted(listed)}, expected {sorted(DATA_FILES)}", "清单中的文件列表不符")
    present = set(os.listdir(vdir))
    extra = present - set(ALL_FILES)
    if extra:
        raise fail(f"unexpected file(s) {sorted(extra)}", f"多余的文件 {sorted(extra)}")
    for name, entry in listed.items():
        path = vdir / name
        if path.is_symlink() or not path.is_file():
            raise fail(f"{name} is missing", f"{name} 缺失")
        size = path.stat().st_size
        if size != entry.get("size"):
            raise fail(
                f"{name} has {size} bytes, manifest says {entry.get('size')}",
                f"{name} 大小 {size} 与清单 {entry.get('size')} 不符",
            )
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise fail(
                f"{name} sha256 {digest[:12]}… does not match the manifest's {str(entry.get('sha256'))[:12]}…",
                f"{name} 的 sha256 与清单不符",
            )
    return VerifyReport(feed, version, sorted(listed), manifest.get("key_id"))
