"""Writing a version atomically: the commit protocol that every publication, blocked run and restore
ends with, and the recovery that undoes or finishes an interrupted one.

Commit protocol (one writer at a time, `<root>/.lock`):

1. stage every feed in a DuckDB session (`columnar`, spilling into `<root>/.staging/session-*`), run
   the assertions, build its files in `<root>/.staging/build-*/<feed>/` (fsync'd), sign the manifests;
2. write the journal `<root>/.journal.json` (version, feeds, each feed's current versions.json
   for rollback);
3. rename each `<feed>` build dir to `<root>/<feed>/<version>/`;
4. replace each `<feed>/versions.json` (new item first, retention marks `pruned`);
5. replace `index.json` — the commit point (its `last_run.version` is this run);
6. delete pruned version dirs, the build dir, then the journal.

Recovery (start of every publish/restore, or `recover()`): with a journal whose run is not in
`index.json`, restore the saved versions.json files and delete the run's version dirs; then delete
staging, temp files, and every version dir that versions.json does not serve (crash leftovers,
pruned dirs). Readers follow versions.json/index.json and only ever see complete versions.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Mapping

from . import fsutil
from . import versions as V
from .columnar import DEFAULT_MEMORY_LIMIT, Session
from .feeds import FEED_NAME_RE, FeedSpec
from .formats import DATA_FILES, MANIFEST, FileEntry
from .signing import SigningKey
from .store import INDEX, VERSIONS, FeedStore

log = logging.getLogger(__name__)

STAGING = ".staging"
JOURNAL = ".journal.json"


@dataclass
class PublishResult:
    version: str
    result: str  # "success" | "failure"
    generated_at: str
    feeds: dict[str, dict] = field(default_factory=dict)  # feed -> manifest (success only)
    reasons: list[dict] = field(default_factory=list)  # failed assertions (incl. overridden ones)
    override: dict | None = None
    previous: dict[str, str | None] = field(default_factory=dict)
    pruned: dict[str, list[str]] = field(default_factory=dict)
    restored_from: str | None = None
    rows: dict[str, int] = field(default_factory=dict)  # feed -> rows (blocked runs too)

    @property
    def ok(self) -> bool:
        return self.result == "success"


class VersionWriter(FeedStore):
    """An exports root that versions are written into, one writer at a time (see the module doc)."""

    def __init__(
        self,
        exports_root: Path | str,
        key_dir: Path | str,
        retention: int = 30,
        *,
        max_shrink: float | None = 0.20,
        specs: Mapping[str, FeedSpec] | None = None,
        lock_timeout: float = 30.0,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    ):
        super().__init__(exports_root, specs=specs)
        if retention < 1:
            raise ValueError("retention must keep at least one version")
        self.key_dir = Path(key_dir)
        self.retention = retention
        self.max_shrink = max_shrink
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit  # of the publication's DuckDB; beyond it, it spills to staging
        self._key: SigningKey | None = None

    # -- key ---------------------------------------------------------------------------------
    @property
    def signing_key(self) -> SigningKey:
        if self._key is None:
            self._key = SigningKey.load_or_create(self.key_dir)
        return self._key

    def public_pem(self) -> str:
        return self.signing_key.public_pem()

    # -- recovery ----------------------------------------------------------------------------
    def _lock(self) -> fsutil.DirLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return fsutil.DirLock(self.root, self.lock_timeout)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the lock, recover first, and undo a half-done run if this one raises."""
        with self._lock():
            self._recover_locked()
            try:
                yield
            except Exception:
                try:
                    self._recover_locked()
                except Exception:  # pragma: no cover - report the original error
                    log.exception("recovery after a failed publication failed too")
                raise

    def recover(self) -> list[str]:
        """Undo or finish an interrupted run and remove leftovers; returns what it did."""
        with self._lock():
            return self._recover_locked()

    def _recover_locked(self) -> list[str]:
        actions: list[str] = []
        journal_path = self.root / JOURNAL
        if journal_path.exists():
            journal = fsutil.read_json(journal_path)
            version = journal["version"]
            last_run = (self.index() or {}).get("last_run") or {}
            if last_run.get("version") == version:
                actions.append(f"finished committed run {version}")
            else:
                for feed, old in journal["rollback"].items():
                    path = self.root / feed / VERSIONS
                    if old is None:
                        fsutil.remove_durable(path)
                    elif not path.exists() or fsutil.read_json(path) != old:
                        fsutil.write_json_durable(path, old)
                    if (self.root / feed / version).exists():
                        fsutil.remove_durable(self.root / feed / version)
                actions.append(f"rolled back uncommitted run {version}")
        if (self.root / STAGING).exists():
            fsutil.remove_durable(self.root / STAGING)
            actions.append("removed staging")
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".") and fsutil.TMP_MARK in entry.name:
                fsutil.remove_durable(entry)
            elif FEED_NAME_RE.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                served = set(V.served_versions(self.versions(entry.name)))
                for sub in sorted(entry.iterdir()):
                    leftover = V.is_version_id(sub.name) and sub.name not in served
                    if leftover or (sub.name.startswith(".") and fsutil.TMP_MARK in sub.name):
                        fsutil.remove_durable(sub)
                        actions.append(f"removed {entry.name}/{sub.name}")
        if journal_path.exists():
            fsutil.remove_durable(journal_path)
        for a in actions:
            log.info("publish recovery: %s", a)
        return actions

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A DuckDB session for one run, its scratch space inside the staging area."""
        work = self.root / STAGING / f"session-{uuid.uuid4().hex[:12]}"
        session = Session(work, memory_limit=self.memory_limit)
        try:
            yield session
        finally:
            session.close()
            shutil.rmtree(work, ignore_errors=True)
            try:
                (self.root / STAGING).rmdir()  # only when empty
            except OSError:
                pass

    # -- version ids -------------------------------------------------------------------------
    def _last_recorded_time(self) -> datetime | None:
        times = []
        last_run = (self.index() or {}).get("last_run") or {}
        if V.is_version_id(last_run.get("version")):
            times.append(V.version_time(last_run["version"]))
        for feed in self.feed_names():
            items = self.versions(feed).get("items") or []
            if items and V.is_version_id(items[0].get("version")):
                times.append(V.version_time(items[0]["version"]))
        return max(times) if times else None

    def _resolve_generated_at(self, generated_at: datetime | None) -> datetime:
        """Ids must sort by time: a run's second is moved past the last recorded one if needed
        (two runs within a second, or a clock that went back), with a warning for an explicit value."""
        last = self._last_recorded_time()
        ts = V.utc_seconds(generated_at or datetime.now(timezone.utc))
        if last is not None and ts <= last:
            if generated_at is not None:
                log.warning(
                    "generated_at %s is not after the last recorded run %s; using %s so that version ids sort by time",
                    V.iso_utc(ts),
                    V.iso_utc(last),
                    V.iso_utc(last + timedelta(seconds=1)),
                )
            ts = last + timedelta(seconds=1)
        return ts

    # -- shared tail: manifests, signature, commit -------------------------------------------
    @staticmethod
    def link_unchanged(entries: list[FileEntry], out: Path, prev_dir: Path, prev_manifest: dict) -> None:
        """A file with the same bytes as the previous version's becomes a hard link to it: an
        unchanged feed costs its manifest and an empty delta (every path still exists and verifies)."""
        before = {e["name"]: e for e in prev_manifest["files"]}
        for e in entries:
            old = before.get(e.name) or {}
            if old.get("sha256") == e.sha256 and old.get("size") == e.size:
                (out / e.name).unlink()
                link_or_copy(prev_dir / e.name, out / e.name)

    def _new_build_dir(self) -> Path:
        build = self.root / STAGING / f"build-{uuid.uuid4().hex[:12]}"
        fsutil.mkdir_durable(build)
        return build

    def _finish(
        self,
        build: Path,
        files: dict[str, list[FileEntry]],
        extra: dict[str, dict],
        ts: datetime,
        prev: dict[str, str | None],
        common: dict,
        override_rec: dict | None,
        failures: list[dict],
        restored_from: str | None,
    ) -> PublishResult:
        digest = V.content_hash((feed, e.name, e.sha256) for feed, es in files.items() for e in es)
        version = V.make_version_id(ts, digest)
        key = self.signing_key
        manifests, items = {}, {}
        for feed in sorted(files):
            spec, x = self.specs[feed], extra[feed]
            row_count = files[feed][0].rows
            manifest = {
                "version": version,
                "feed": feed,
                "title": spec.title,
                "generated_at": V.iso_utc(ts),
                "as_of": x.get("as_of", common["as_of"]),
                "policy_version": x.get("policy_version", common["policy_version"]),
                "previous_version": prev[feed],
                "row_count": row_count,
                "id_columns": list(spec.id_columns),
                "columns": x["columns"],
                "delta": x["delta"],
                "files": [e.as_dict() for e in files[feed]],
                "held_back": x.get("held_back", common["held_back"]),
                "run_info": common["run_info"],
                "override": override_rec,
                "restored_from": restored_from,
                "rendered_by": x.get("rendered_by"),
                "key_id": key.key_id,
            }
            manifest["signature"] = key.sign_manifest(manifest)
            path = build / feed / MANIFEST
            path.write_bytes(fsutil.json_bytes(manifest))
            fsutil.fsync_file(path)
            fsutil.fsync_dir(build / feed)
            manifests[feed] = manifest
            items[feed] = {
                "version": version,
                "generated_at": manifest["generated_at"],
                "result": "success",
                "reasons": [],
                "row_count": row_count,
                "pruned": False,
                "override": override_rec,
                "as_of": manifest["as_of"],
                "policy_version": manifest["policy_version"],
                "previous_version": prev[feed],
                "restored_from": restored_from,
            }
        fsutil.fsync_dir(build)
        pruned = self._commit(
            version,
            ts,
            {f: build / f for f in files},
            items,
            manifests,
            "success",
            failures,
            restored_from=restored_from,
            build=build,
        )
        log.info("published %s (%s)", version, ", ".join(f"{f}: {m['row_count']} rows" for f, m in manifests.items()))
        return PublishResult(
            version,
            "success",
            V.iso_utc(ts),
            manifests,
            failures,
            override_rec,
            prev,
            pruned,
            restored_from,
            {f: m["row_count"] for f, m in manifests.items()},
        )

    def _commit(
        self,
        version: str,
        ts: datetime,
        dirs: dict[str, Path],
        items: dict[str, dict],
        manifests: dict[str, dict],
        result: str,
        reasons: list[dict],
        restored_from: str | None = None,
        build: Path | None = None,
    ) -> dict[str, list[str]]:
        """Steps 2–6 of the protocol; returns the versions pruned per feed."""
        current = {feed: self.versions(feed) for feed in items}
        rollback = {feed: (current[feed] if (self.root / feed / VERSIONS).exists() else None) for feed in items}
        fsutil.write_json_durable(
            self.root / JOURNAL, {"version": version, "result": result, "feeds": sorted(items), "rollback": rollback}
        )
        for feed, src in dirs.items():
            fsutil.mkdir_durable(self.root / feed)
            fsutil.rename_durable(src, self.root / feed / version)
        pruned = {}
        for feed, item in items.items():
            fsutil.mkdir_durable(self.root / feed)
            new, pruned[feed] = V.with_new_item(current[feed], item, self.retention)
            fsutil.write_json_durable(self.root / feed / VERSIONS, new)

        index = self.index() or {"version": None, "generated_at": None, "feeds": {}}
        feeds_index = dict(index.get("feeds") or {})
        if result == "success":
            for feed, m in manifests.items():
                feeds_index[feed] = {
                    "latest": version,
                    "title": m["title"],
                    "scope": self.specs[feed].scope,
                    "generated_at": m["generated_at"],
                    "as_of": m["as_of"],
                    "policy_version": m["policy_version"],
                    "row_count": m["row_count"],
                }
            index["version"], index["generated_at"] = version, V.iso_utc(ts)
        index["feeds"] = dict(sorted(feeds_index.items()))
        index["last_run"] = {
            "version": version,
            "generated_at": V.iso_utc(ts),
            "result": result,
            "feeds": sorted(items),
            "reasons": reasons,
            "restored_from": restored_from,
        }
        fsutil.write_json_durable(self.root / INDEX, index)  # commit point

        for feed, gone in pruned.items():
            for v in gone:
                fsutil.remove_durable(self.root / feed / v)
        if build is not None:
            fsutil.remove_durable(build)
        fsutil.remove_durable(self.root / JOURNAL)
        try:
            (self.root / STAGING).rmdir()  # only when empty
        except OSError:
            pass
        return {f: p for f, p in pruned.items() if p}


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link an immutable data file (copy across file systems), durably."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        fsutil.fsync_file(dst)
    fsutil.step(f"link {dst.name}")


def link_full_files(src: Path, out: Path, manifest: dict) -> list[FileEntry]:
    """full.parquet/csv/jsonl of a published version as hard links in `out`, with their entries."""
    entries = {e["name"]: e for e in manifest["files"]}
    for name in DATA_FILES[:3]:
        link_or_copy(src / name, out / name)
    return [FileEntry(n, entries[n]["size"], entries[n]["sha256"], entries[n]["rows"]) for n in DATA_FILES[:3]]
