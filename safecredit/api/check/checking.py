"""One check of the check page: the API's restriction answers for a list, and what the report
needs beside them (publication version, signing key fingerprint, 守信激励, the matter's name).

The answers are exactly the API batch's (`restrictions.answer_codes`); this module adds nothing
to what a unit or person is answered, only the frame a dated record of the check needs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from safecredit.api.matters import MATTERS, known_matters
from safecredit.api.problems import ApiProblem
from safecredit.api.restrictions import answer_codes
from safecredit.api.snapshot import Snapshot
from safecredit.api.subjects import masked_code
from safecredit.config import SHANGHAI
from safecredit.publish.errors import VerificationError

from .codes_input import CodeList, Malformed

STATUS_NAMES = {
    "pending": "待生效",
    "listed": "列入期间",
    "expired": "已届满移出",
    "repaired": "已信用修复",
    "objection_upheld": "异议成立",
    "revoked": "已撤销",
}


@dataclass
class Check:
    check_id: str
    at: datetime  # UTC
    consumer: str
    key_id: str
    matter: str | None
    matter_name: str
    as_of: date | None
    version: str | None
    publication_as_of: str | None
    signing_key: dict[str, str | None]
    rows: list[dict[str, Any]]  # answers (codes masked as the API shows them) + `incentive`
    malformed: list[Malformed] = field(default_factory=list)
    duplicates: int = 0
    source: str = ""
    header: str | None = None

    @property
    def at_local(self) -> str:
        return self.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def restricted(self) -> int:
        return sum(1 for r in self.rows if r.get("restricted"))


def new_check_id(at: datetime) -> str:
    """`C` + the Asia/Shanghai date + 12 random hex: unique, and sortable by day in the audit."""
    return f"C{at.astimezone(SHANGHAI):%Y%m%d}-{secrets.token_hex(6)}"


def matters_of(snap: Snapshot, cur) -> list[tuple[str, str]]:
    """(matter, Chinese name) in the order of exchange.md §2, then any the publication names."""
    known = known_matters(snap, cur)
    order = {m: i for i, m in enumerate(MATTERS)}
    return sorted(known.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def incentives(snap: Snapshot, cur) -> dict[str, bool]:
    """uscc → 守信激励 eligible (credit_scores.incentive_eligible), once per snapshot."""
    found = snap.cache.get("check_incentives")
    if found is None:
        found = {}
        if snap.has("credit_scores") and {"uscc", "incentive_eligible"} <= set(snap.feeds["credit_scores"].columns):
            found = dict(
                cur.execute('SELECT uscc, bool_or(incentive_eligible) FROM "credit_scores" GROUP BY uscc').fetchall()
            )
        snap.cache["check_incentives"] = found
    return found


def signing_key_of(snap: Snapshot, keys_dir: Path) -> dict[str, str | None]:
    """The key that signed the served manifest: its key id (from the manifest) and the SHA-256
    fingerprint of the raw Ed25519 public key, when the public key beside the service matches."""
    cached = snap.cache.get("check_signing_key")
    if cached is not None:
        return cached
    from safecredit.publish.signing import PUBLIC_KEY_FILE, fingerprint_of, load_public_key

    feed = "restrictions" if snap.has("restrictions") else "blacklist"
    key_id = None
    if snap.has(feed):
        key_id = snap.store.read_manifest(feed, snap.feeds[feed].version).get("key_id")
    fingerprint = None
    try:
        public = load_public_key((keys_dir / PUBLIC_KEY_FILE).read_bytes())
        if key_id is None or fingerprint_of(public).startswith(key_id):
            fingerprint = fingerprint_of(public)
    except (OSError, VerificationError):  # no public key here (a served copy): the manifest's key id alone
        pass
    found = {"key_id": key_id, "fingerprint": fingerprint}
    snap.cache["check_signing_key"] = found
    return found


def run_check(
    snap: Snapshot,
    salt,
    keys_dir: Path,
    codes: CodeList,
    *,
    consumer: str,
    key_id: str,
    matter: str | None,
    as_of: date | None,
    subject_type: str | None,
) -> Check:
    """Answer every valid code of `codes` (request-level problems raise ApiProblem)."""
    cur = snap.cursor()
    try:
        matter_names = dict(matters_of(snap, cur))
        answers = answer_codes(snap, cur, salt, codes.codes, subject_type=subject_type, matter=matter, as_of=as_of)
        earned = incentives(snap, cur)
    finally:
        cur.close()
    rows: list[dict[str, Any]] = []
    malformed = list(codes.malformed)
    for raw, line, answer in zip(codes.codes, codes.lines, answers):
        if isinstance(answer, ApiProblem):  # e.g. a code valid as both a USCC and an ID number (409)
            malformed.append(Malformed(line, masked_code(raw), answer.detail))
            continue
        unit = answer["subject_type"] == "unit"
        rows.append({**answer, "line": line, "incentive": bool(earned.get(answer["code"])) if unit else None})
    at = datetime.now(timezone.utc)
    first = rows[0] if rows else {}
    return Check(
        check_id=new_check_id(at),
        at=at,
        consumer=consumer,
        key_id=key_id,
        matter=matter,
        matter_name=matter_names.get(matter, matter) if matter else "全部惩戒事项",
        as_of=as_of,
        version=first.get("version") or snap.version,
        publication_as_of=first.get("publication_as_of"),
        signing_key=signing_key_of(snap, keys_dir),
        rows=rows,
        malformed=sorted(malformed, key=lambda m: m.line),
        duplicates=codes.duplicates,
        source=codes.source,
        header=codes.header,
    )
