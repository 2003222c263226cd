"""The publisher: one run → one version id across its feeds, written atomically and signed.

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

import hashlib
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from . import fsutil
from . import versions as V
from .columnar import DEFAULT_MEMORY_LIMIT, Session
from .errors import UnsafePath, VersionNotFound
from .feeds import FEED_NAME_RE, FeedSpec
from .formats import DATA_FILES, MANIFEST, FileEntry, json_value
from .guards import id_number_message
from .signing import SigningKey, canonical_json
from .store import INDEX, VERSIONS, FeedStore, verify_version

log = logging.getLogger(__name__)

STAGING = ".staging"
JOURNAL = ".journal.json"
NON_OVERRIDABLE = frozenset({"id_numbers"})
_DEFAULT = object()

# An assertion hook gets each feed's rows (a DuckDB relation, sorted by id) and previous manifest.
Hook = Callable[[dict[str, Any], dict[str, dict | None]], Any]


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


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _check_override(override: Mapping[str, Any] | None) -> dict | None:
    if override is None:
        return None
    by, reason, names = override.get("by"), override.get("reason"), override.get("assertions")
    if not (isinstance(by, str) and by.strip() and isinstance(reason, str) and reason.strip()):
        raise ValueError("an override needs 'by' (who) and 'reason' (why)")
    if isinstance(names, str) or not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError("an override must name the assertions it overrides, e.g. ['max_shrink']")
    refused = NON_OVERRIDABLE & set(names)
    if refused:
        raise ValueError(f"assertion(s) {sorted(refused)} cannot be overridden")
    return {**json_value(dict(override)), "assertions": sorted(set(names))}


def _normalise_failures(out: Any, hook: Callable) -> list[dict]:
    if out is None or out is True:
        return []
    if isinstance(out, (str, Mapping)):
        out = [out]
    failures = []
    for f in out:
        if isinstance(f, str):
            failures.append({"assertion": "custom", "feed": None, "message": f})
        elif isinstance(f, Mapping) and (f.get("message") or f.get("reason")):
            failures.append(
                {
                    "assertion": str(f.get("assertion") or "custom"),
                    "feed": f.get("feed"),
                    "message": str(f.get("message") or f.get("reason")),
                }
            )
        else:
            raise TypeError(
                f"assertion hook {getattr(hook, '__name__', hook)!r} returned {f!r}; "
                "expected messages (str) or dicts with 'assertion', 'feed', 'message'"
            )
    return failures


class Publisher(FeedStore):
    """Writes versions into an exports root (see the module doc for the protocol)."""

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

    # -- publish -----------------------------------------------------------------------------
    def publish(
        self,
        feeds: Mapping[str, Any],
        *,
        as_of: date | str,
        policy_version: str,
        generated_at: datetime | None = None,
        held_back: Iterable[Mapping] = (),
        run_info: Mapping[str, Any] | None = None,
        assertions: Hook | Sequence[Hook] | None = None,
        override: Mapping[str, Any] | None = None,
        max_shrink: float | None | object = _DEFAULT,
    ) -> PublishResult:
        """Publish one run. Returns a PublishResult (`result == "failure"` when an output assertion
        blocked it: then nothing new is served and the failure is recorded in versions.json)."""
        if not feeds:
            raise ValueError("publish needs at least one feed table")
        unknown = sorted(set(feeds) - set(self.specs))
        if unknown:
            raise ValueError(f"unknown feed(s) {unknown}; known: {sorted(self.specs)}")
        if not isinstance(policy_version, str) or not policy_version:
            raise ValueError("policy_version must be a non-empty string")
        common = _run_fields(as_of, policy_version, held_back, run_info)
        override_rec = _check_override(override)
        shrink = self.max_shrink if max_shrink is _DEFAULT else max_shrink
        hooks = [] if assertions is None else [assertions] if callable(assertions) else list(assertions)

        with self._writing(), self._session() as session:
            staged = {f: session.stage(self.specs[f], feeds[f]) for f in sorted(feeds)}
            prev = {f: self.latest(f) for f in staged}
            previous = {f: (self.read_manifest(f, v) if v else None) for f, v in prev.items()}
            failures = self._check(session, previous, shrink, hooks)
            covered = set(override_rec["assertions"]) if override_rec else set()
            blocking = [r for r in failures if r["assertion"] not in covered]
            if override_rec is not None:
                override_rec["overridden"] = [r for r in failures if r["assertion"] in covered]
            ts = self._resolve_generated_at(generated_at)
            if blocking:
                result = self._record_failure(session, ts, failures, override_rec, prev, common)
            else:
                result = self._publish_built(session, ts, prev, previous, common, override_rec, failures)
            result.rows = {f: p.rows for f, p in staged.items()}
            return result

    def _check(
        self, session: Session, previous: dict[str, dict | None], max_shrink: float | None, hooks: list[Hook]
    ) -> list[dict]:
        failures = []
        for feed in session.feeds:
            found = session.full_id_numbers(feed)
            if found:
                failures.append({"assertion": "id_numbers", "feed": feed, "message": id_number_message(feed, found)})
        if max_shrink is not None:
            for feed, p in session.feeds.items():
                before = (previous[feed] or {}).get("row_count") or 0
                now = p.rows
                if before and (before - now) / before > max_shrink:
                    failures.append(
                        {
                            "assertion": "max_shrink",
                            "feed": feed,
                            "message": f"{feed} would shrink from {before} to {now} rows "
                            f"({(before - now) / before:.1%} lost; at most {max_shrink:.0%} allowed) "
                            f"against {previous[feed]['version']}",
                        }
                    )
        tables = {f: session.relation(f) for f in session.feeds}
        for hook in hooks:
            failures.extend(_normalise_failures(hook(tables, previous), hook))
        return failures

    def _record_failure(
        self,
        session: Session,
        ts: datetime,
        reasons: list[dict],
        override_rec: dict | None,
        prev: dict[str, str | None],
        common: dict,
    ) -> PublishResult:
        digests = [(feed, "full.jsonl", session.content_digest(feed)) for feed in session.feeds]
        rows = {feed: p.rows for feed, p in session.feeds.items()}
        return self._commit_failure(V.content_hash(digests), rows, ts, reasons, override_rec, prev, common)

    def record_blocked(
        self,
        row_counts: Mapping[str, int],
        reasons: list[dict],
        *,
        as_of: date | str,
        policy_version: str,
        generated_at: datetime | None = None,
    ) -> PublishResult:
        """Record a run that checks outside the publisher blocked (the Dagster publication gate):
        a failed item in every feed's versions.json, nothing new served (exchange.md §1)."""
        common = {"as_of": _as_date(as_of).isoformat(), "policy_version": policy_version}
        digest = hashlib.sha256(canonical_json({"rows": dict(row_counts), "reasons": reasons})).hexdigest()
        with self._writing():
            prev = {f: self.latest(f) for f in sorted(row_counts)}
            ts = self._resolve_generated_at(generated_at)
            return self._commit_failure(digest, dict(sorted(row_counts.items())), ts, reasons, None, prev, common)

    def _commit_failure(
        self,
        digest: str,
        rows: dict[str, int],
        ts: datetime,
        reasons: list[dict],
        override_rec: dict | None,
        prev: dict[str, str | None],
        common: dict,
    ) -> PublishResult:
        version = V.make_version_id(ts, digest)
        items = {
            feed: {
                "version": version,
                "generated_at": V.iso_utc(ts),
                "result": "failure",
                "reasons": reasons,
                "row_count": n,
                "pruned": False,
                "override": override_rec,
                "as_of": common["as_of"],
                "policy_version": common["policy_version"],
                "previous_version": prev[feed],
            }
            for feed, n in rows.items()
        }
        self._commit(version, ts, {}, items, {}, "failure", reasons)
        log.warning("publication %s blocked: %s", version, "; ".join(r["message"] for r in reasons))
        return PublishResult(version, "failure", V.iso_utc(ts), reasons=reasons, override=override_rec, previous=prev)

    def _publish_built(
        self,
        session: Session,
        ts: datetime,
        prev: dict[str, str | None],
        previous: dict[str, dict | None],
        common: dict,
        override_rec: dict | None,
        failures: list[dict],
    ) -> PublishResult:
        build = self._new_build_dir()
        files: dict[str, list[FileEntry]] = {}
        extra: dict[str, dict] = {}
        for feed, p in session.feeds.items():
            out = build / feed
            out.mkdir()
            if prev[feed] is None:  # a first version: its delta is every line, ADD, from the same scan
                *entries, delta = session.write_full_files(feed, out, add_delta=True)
                stats = {"ADD": p.rows, "MOD": 0, "DEL": 0}
            else:
                delta, stats = session.write_delta(p.spec, self._previous_parquet(feed, prev[feed]), feed, out)
                if _renders_as(previous[feed], p.column_info(), stats):
                    # the same values, columns and code as the previous version's files: the same
                    # bytes, so they are linked without rendering a row (a replay's feeds, mostly)
                    entries = _link_full_files(self.root / feed / prev[feed], out, previous[feed])
                else:
                    entries = session.write_full_files(feed, out)
                    self._link_unchanged(entries, out, self.root / feed / prev[feed], previous[feed])
            files[feed] = [*entries, delta]
            extra[feed] = {"columns": p.column_info(), "delta": stats, "rendered_by": rendered_by()}
        return self._finish(build, files, extra, ts, prev, common, override_rec, failures, None)

    def publish_unchanged(
        self,
        version: str,
        *,
        as_of: date | str,
        policy_version: str,
        generated_at: datetime | None = None,
        held_back: Iterable[Mapping] = (),
        run_info: Mapping[str, Any] | None = None,
    ) -> PublishResult | None:
        """The next version of a run built from exactly the inputs `version` was built from (the
        warehouse's ledger knows): what `publish` would write for the same rows — every data file a
        hard link to `version`'s, an empty delta — without rendering a row. None when `version` is
        not what every feed it published still serves (restored, pruned, superseded): publish then."""
        common = _run_fields(as_of, policy_version, held_back, run_info)
        with self._writing():
            names = [f for f in self.feed_names() if V.find_item(self.versions(f), version)]
            if not names or any(self.latest(f) != version for f in names):
                return None
            build = self._new_build_dir()
            files: dict[str, list[FileEntry]] = {}
            extra: dict[str, dict] = {}
            for feed in sorted(names):
                manifest = self.read_manifest(feed, version)
                out = build / feed
                out.mkdir()
                delta = out / DATA_FILES[3]
                delta.write_bytes(b"")
                fsutil.fsync_file(delta)
                empty = FileEntry(delta.name, 0, hashlib.sha256(b"").hexdigest(), 0)
                files[feed] = [*_link_full_files(self.root / feed / version, out, manifest), empty]
                extra[feed] = {
                    "columns": manifest["columns"],
                    "delta": dict.fromkeys(("ADD", "MOD", "DEL"), 0),
                    "rendered_by": manifest.get("rendered_by"),  # the files are that version's
                }
            fsutil.fsync_dir(build)
            ts = self._resolve_generated_at(generated_at)
            return self._finish(build, files, extra, ts, dict.fromkeys(files, version), common, None, [], None)

    # -- restore -----------------------------------------------------------------------------
    def restore(
        self,
        version: str,
        *,
        feeds: Sequence[str] | None = None,
        by: str | None = None,
        reason: str | None = None,
        generated_at: datetime | None = None,
        run_info: Mapping[str, Any] | None = None,
    ) -> PublishResult:
        """Serve an earlier complete version again, recorded as a new version (`restored_from`)."""
        if not V.is_version_id(version):
            raise UnsafePath(f"not a version id: {version!r}", f"无效的版本号：{version!r}")
        with self._writing():
            names = list(feeds) if feeds else [f for f in self.feed_names() if V.find_item(self.versions(f), version)]
            if not names:
                raise VersionNotFound(f"no feed has a version {version}", f"没有任何数据集存在版本 {version}")
            for feed in names:
                if feed not in self.specs:
                    raise VersionNotFound(f"unknown feed {feed!r}", f"未知数据集 {feed!r}")
                self._require_ok(feed, version)  # VersionPruned / VersionNotFound
            pem = self.signing_key.public_pem()
            sources = {}
            for feed in names:
                verify_version(self.root, feed, version, pem)
                sources[feed] = fsutil.read_json(self.root / feed / version / MANIFEST)
            ts = self._resolve_generated_at(generated_at)
            prev = {f: self.latest(f) for f in names}
            build = self._new_build_dir()
            files: dict[str, list[FileEntry]] = {}
            extra: dict[str, dict] = {}
            with self._session() as session:
                for feed in sorted(names):
                    src, out, manifest = self.root / feed / version, build / feed, sources[feed]
                    out.mkdir()
                    linked = _link_full_files(src, out, manifest)
                    spec = replace(
                        self.specs[feed], id_columns=tuple(manifest.get("id_columns") or self.specs[feed].id_columns)
                    )
                    delta, stats = session.write_delta(
                        spec, self._previous_parquet(feed, prev[feed]), out / "full.parquet", out
                    )
                    files[feed] = [*linked, delta]
                    extra[feed] = {
                        "columns": manifest.get("columns"),
                        "delta": stats,
                        "as_of": manifest["as_of"],
                        "policy_version": manifest["policy_version"],
                        "held_back": manifest.get("held_back", []),
                        "rendered_by": manifest.get("rendered_by"),  # the restored version's files
                    }
            fsutil.fsync_dir(build)
            info = json_value({**dict(run_info or {}), "restored_by": by, "restore_reason": reason})
            common = {"as_of": None, "policy_version": None, "held_back": [], "run_info": info}
            return self._finish(build, files, extra, ts, prev, common, None, [], version)

    # -- shared tail: manifests, signature, commit -------------------------------------------
    @staticmethod
    def _link_unchanged(entries: list[FileEntry], out: Path, prev_dir: Path, prev_manifest: dict) -> None:
        """A file with the same bytes as the previous version's becomes a hard link to it: an
        unchanged feed costs its manifest and an empty delta (every path still exists and verifies)."""
        before = {e["name"]: e for e in prev_manifest["files"]}
        for e in entries:
            old = before.get(e.name) or {}
            if old.get("sha256") == e.sha256 and old.get("size") == e.size:
                (out / e.name).unlink()
                _link_or_copy(prev_dir / e.name, out / e.name)

    def _previous_parquet(self, feed: str, version: str | None) -> Path | None:
        """The previous version's full.parquet, the delta's base (none before the first version)."""
        return self.safe_file_path(feed, version, "full.parquet") if version else None

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


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link an immutable data file (copy across file systems), durably."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        fsutil.fsync_file(dst)
    fsutil.step(f"link {dst.name}")


def rendered_by() -> str:
    """What decides a feed's bytes besides its rows: the publication's code, the feed definitions
    and the DuckDB that renders and writes them (the warehouse code digest covers all three)."""
    from safecredit.reuse import code_digest

    return code_digest()


def _renders_as(previous: dict | None, columns: list[dict], stats: Mapping[str, int]) -> bool:
    """True when rendering the staged rows would give the previous version's files byte for byte:
    the delta found no row added, changed or removed, the columns (names, types, headers) are the
    same, and the previous files were rendered by this code. A manifest from before `rendered_by`
    was recorded never qualifies: its feed is rendered (and linked if equal) as before."""
    return bool(
        previous
        and not any(stats.values())
        and previous.get("columns") == columns
        and previous.get("rendered_by") == rendered_by()
    )


def _link_full_files(src: Path, out: Path, manifest: dict) -> list[FileEntry]:
    """full.parquet/csv/jsonl of a published version as hard links in `out`, with their entries."""
    entries = {e["name"]: e for e in manifest["files"]}
    for name in DATA_FILES[:3]:
        _link_or_copy(src / name, out / name)
    return [FileEntry(n, entries[n]["size"], entries[n]["sha256"], entries[n]["rows"]) for n in DATA_FILES[:3]]


def _run_fields(as_of: date | str, policy_version: str, held_back: Iterable[Mapping], run_info: Mapping | None) -> dict:
    """What a run says of itself in every manifest of its version."""
    return {
        "as_of": _as_date(as_of).isoformat(),
        "policy_version": policy_version,
        "held_back": json_value([dict(h) for h in held_back]),
        "run_info": json_value(dict(run_info or {})),
    }
