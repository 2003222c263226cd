"""Where the mirror reads published feeds: an exports directory, or the API's feed routes.

Both answer the same two questions: which versions a feed has (the `versions.json` items, newest
first) and one file of one version, copied into a local directory. Copying (rather than reading a
directory source in place) means the bytes whose sha256 is checked are the bytes that are loaded.
A pruned or missing version raises `Gone`; anything that stops us reading raises
`SourceUnreachable` (exit 3).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from safecredit.publish import FeedStore, UnsafePath, VersionNotFound
from safecredit.publish.feeds import FEED_NAME_RE
from safecredit.publish.versions import is_version_id

from .errors import Gone, MirrorUsageError, SourceUnreachable

CHUNK = 1 << 20


class DirSource:
    """An exports tree on a local or network file system (`<root>/index.json`, `<feed>/…`)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.store = FeedStore(self.root)
        self.label = str(self.root)

    def catalogue(self) -> dict[str, list[dict[str, Any]]]:
        """{feed: versions.json items, newest first} for every feed with a versions.json."""
        if not self.root.is_dir():
            raise SourceUnreachable(
                f"导出目录 {self.root} 不存在或无法读取。",
                f"The exports directory {self.root} does not exist or cannot be read.",
            )
        try:
            out = {}
            for feed in self.store.feed_names():
                items = self.store.versions(feed).get("items") or []
                if items:
                    out[feed] = items
            return out
        except OSError as exc:
            raise SourceUnreachable(
                f"无法读取导出目录 {self.root}：{exc}", f"Cannot read the exports directory {self.root}: {exc}"
            ) from exc

    def fetch(self, feed: str, version: str, name: str, dest: Path) -> str:
        """Copy one file into `dest`; return the sha256 of the copied bytes."""
        try:
            src = self.store.safe_file_path(feed, version, name)  # VersionPruned / VersionNotFound
            digest = hashlib.sha256()
            with open(src, "rb") as fin, open(dest, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
            return digest.hexdigest()
        except (VersionNotFound, FileNotFoundError, UnsafePath) as exc:
            raise Gone(f"{feed}/{version}/{name}: {exc}") from exc
        except OSError as exc:
            raise SourceUnreachable(
                f"无法读取 {feed}/{version}/{name}：{exc}", f"Cannot read {feed}/{version}/{name}: {exc}"
            ) from exc


class HttpSource:
    """The API: `GET /v1/feeds` and `GET /v1/feeds/{feed}/{version}/{file}` with a Bearer key."""

    def __init__(self, base_url: str, key: str | None, *, timeout: float = 60.0):
        import requests

        if not key:
            raise MirrorUsageError(
                "从 API 镜像需要 API 密钥：--key 或环境变量 SAFECREDIT_MIRROR_KEY。",
                "Mirroring from the API needs an API key: --key or SAFECREDIT_MIRROR_KEY.",
            )
        self.base = base_url.rstrip("/")
        self.base = self.base.removesuffix("/v1")
        self.label = self.base
        self.timeout = timeout
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.forbidden: set[str] = set()  # feeds the key's scopes do not cover

    def _get(self, path: str, **kw):
        import requests

        try:
            r = self.http.get(self.base + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            # the exception's text is a page of urllib3 internals: its kind says enough
            raise SourceUnreachable(
                f"无法连接 {self.base}（{type(exc).__name__}）。", f"Cannot reach {self.base} ({type(exc).__name__})."
            ) from exc
        if r.status_code == 401:
            r.close()
            raise MirrorUsageError(
                "API 拒绝了该密钥（401）：密钥无效、已撤销或已轮换。",
                "The API refused the key (401): invalid, revoked or rotated.",
            )
        if r.status_code in (429,) or r.status_code >= 500:
            r.close()
            raise SourceUnreachable(
                f"{self.base}{path} 暂不可用（HTTP {r.status_code}），请稍后重试。",
                f"{self.base}{path} is unavailable (HTTP {r.status_code}); try again later.",
            )
        return r

    def catalogue(self) -> dict[str, list[dict[str, Any]]]:
        r = self._get("/v1/feeds")
        if r.status_code != 200:
            raise SourceUnreachable(
                f"GET /v1/feeds 返回 HTTP {r.status_code}。", f"GET /v1/feeds answered HTTP {r.status_code}."
            )
        try:
            body = r.json()
        except ValueError as exc:
            raise SourceUnreachable("GET /v1/feeds 返回的不是 JSON。", "GET /v1/feeds did not answer JSON.") from exc
        return {
            f["name"]: f.get("versions") or []
            for f in body.get("feeds", [])
            if isinstance(f.get("name"), str) and FEED_NAME_RE.match(f["name"])
        }

    def fetch(self, feed: str, version: str, name: str, dest: Path) -> str:
        if not FEED_NAME_RE.match(feed) or not is_version_id(version):
            raise Gone(f"{feed}/{version}: not a feed/version name")
        import requests

        r = self._get(f"/v1/feeds/{feed}/{version}/{name}", stream=True)
        with r:
            if r.status_code in (404, 410):
                raise Gone(f"{feed}/{version}/{name}: HTTP {r.status_code}")
            if r.status_code == 403:
                self.forbidden.add(feed)
                raise MirrorUsageError(
                    f"该密钥没有读取 {feed} 的权限（403）。", f"The key lacks the scope to read {feed} (403)."
                )
            if r.status_code != 200:
                raise SourceUnreachable(
                    f"{feed}/{version}/{name} 返回 HTTP {r.status_code}。",
                    f"{feed}/{version}/{name} answered HTTP {r.status_code}.",
                )
            digest = hashlib.sha256()
            try:
                with open(dest, "wb") as fout:
                    for chunk in r.iter_content(CHUNK):
                        digest.update(chunk)
                        fout.write(chunk)
            except requests.RequestException as exc:
                raise SourceUnreachable(
                    f"下载 {feed}/{version}/{name} 中断：{exc}", f"Download of {feed}/{version}/{name} broke off: {exc}"
                ) from exc
        return digest.hexdigest()


def open_source(where: str, key: str | None):
    """`http(s)://…` → the API; anything else → an exports directory."""
    if where.startswith(("http://", "https://")):
        return HttpSource(where, key)
    return DirSource(where)
