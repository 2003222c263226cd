"""The publisher: one run → one version id across its feeds, staged and checked in DuckDB, its
files rendered (or linked where nothing changed) and committed by `commit.VersionWriter`'s
protocol; a blocked run recorded as a failed item; an earlier version restored as a new one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import fsutil
from . import versions as V
from .columnar import Session
from .commit import PublishResult, VersionWriter, link_full_files
from .errors import UnsafePath, VersionNotFound
from .formats import DATA_FILES, MANIFEST, FileEntry, json_value
from .guards import id_number_message
from .signing import canonical_json
from .store import verify_version

log = logging.getLogger(__name__)


NON_OVERRIDABLE = frozenset({"id_numbers"})
_DEFAULT = object()

# An assertion hook gets each feed's rows (a DuckDB relation, sorted by id) and previous manifest.
Hook = Callable[[dict[str, Any], dict[str, dict | None]], Any]


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


class Publisher(VersionWriter):
    """Publishes runs, records blocked ones and restores earlier versions (see commit.py for the protocol)."""

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
                    entries = link_full_files(self.root / feed / prev[feed], out, previous[feed])
                else:
                    entries = session.write_full_files(feed, out)
                    self.link_unchanged(entries, out, self.root / feed / prev[feed], previous[feed])
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
                files[feed] = [*link_full_files(self.root / feed / version, out, manifest), empty]
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
                    linked = link_full_files(src, out, manifest)
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

    def _previous_parquet(self, feed: str, version: str | None) -> Path | None:
        """The previous version's full.parquet, the delta's base (none before the first version)."""
        return self.safe_file_path(feed, version, "full.parquet") if version else None


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


def _run_fields(as_of: date | str, policy_version: str, held_back: Iterable[Mapping], run_info: Mapping | None) -> dict:
    """What a run says of itself in every manifest of its version."""
    return {
        "as_of": _as_date(as_of).isoformat(),
        "policy_version": policy_version,
        "held_back": json_value([dict(h) for h in held_back]),
        "run_info": json_value(dict(run_info or {})),
    }
