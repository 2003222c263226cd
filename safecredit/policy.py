"""Versioned policy data (contracts/policy/<name>/*.yaml): the configurable defaults of rules.md.

One folder is one policy: `policy.yaml` names it (`policy`, `version`, `effective_from`); every
other YAML file in the folder is a topic (listing, measures, credit, premium, …) merged into one
document. The policy in force on a date is the folder with the latest `effective_from` not after
it. The published version is the declared one plus a hash of the folder's content, so an edited
value can never hide behind an unchanged version string.

SQL reads policy through two kinds of tables `prepare` makes: `policy_kv(key, value)` for every
scalar (macro `pol('listing.notice_working_days')`), and `policy_<name>` for each list of
records a topic declares under `tables:`.

Dated regimes: a sub-folder `<topic>/<regime>/<topic>.yaml` of a policy folder is one governing
text of that topic with its own `effective_from` (e.g. publicity/ndrc-order-58/publicity.yaml).
Its scalars become one row of the table `<topic>_regimes`, each of its lists the rows of
`<topic>_<list>` with a `regime` column, so the SQL picks the regime in force on each record's own
date (rules.md §5: a decision keeps the publicity periods in force on its date).

Every value cites its source (`basis`); a row or section that could not be confirmed against the
text carries `unconfirmed: true` (listed by `unconfirmed_values`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from safecredit.config import CONTRACTS_DIR


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    effective_from: date
    doc: dict

    def get(self, dotted: str, default=None):
        cur = self.doc
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return cur

    def scalars(self) -> list[tuple[str, str]]:
        """Every scalar leaf as (dotted key, text), for the `policy_kv` table."""
        out: list[tuple[str, str]] = []

        def walk(prefix: str, node) -> None:
            if isinstance(node, dict):
                for k, v in node.items():
                    if prefix == "" and k == "tables":
                        continue
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            elif not isinstance(node, list) and node is not None:
                out.append((prefix, str(node).lower() if isinstance(node, bool) else str(node)))

        walk("", self.doc)
        return sorted(out)

    def tables(self) -> dict[str, list[dict]]:
        return dict(self.doc.get("tables", {}) or {})


def _merge(into: dict, new: dict) -> dict:
    for k, v in new.items():
        if k == "tables" and isinstance(v, dict):
            into.setdefault("tables", {}).update(v)
        elif isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v
    return into


def policy_root() -> Path:
    env = os.environ.get("SAFECREDIT_POLICY_DIR")
    return Path(env).resolve() if env else CONTRACTS_DIR / "policy"


@cache
def load_policies(root: Path | None = None) -> tuple[Policy, ...]:
    import yaml

    root = root or policy_root()
    out = []
    for folder in sorted(p for p in root.iterdir() if (p / "policy.yaml").exists()):
        files = sorted(folder.glob("*.yaml"))
        h = hashlib.sha256()
        doc: dict = {}
        for f in files:
            raw = f.read_bytes()
            h.update(f.name.encode() + b"\0" + raw)
            _merge(doc, yaml.safe_load(raw) or {})
        for relative, raw in _dated_regime_files(folder):
            h.update(relative.encode() + b"\0" + raw)
        _merge(doc, {"tables": _dated_regime_tables(folder)})
        eff = doc.get("effective_from", date(1900, 1, 1))
        eff = eff if isinstance(eff, date) else date.fromisoformat(str(eff))
        out.append(Policy(str(doc.get("policy", folder.name)), f"{doc['version']}+{h.hexdigest()[:6]}", eff, doc))
    if not out:
        raise FileNotFoundError(f"no policy folder (with policy.yaml) under {root}")
    return tuple(sorted(out, key=lambda p: p.effective_from))


def _dated_regime_files(folder: Path) -> list[tuple[str, bytes]]:
    """(path relative to the folder, bytes) of every `<topic>/<regime>/<topic>.yaml`, in name order."""
    out = []
    for topic in sorted(p for p in folder.iterdir() if p.is_dir()):
        for regime in sorted(p for p in topic.iterdir() if p.is_dir()):
            f = regime / f"{topic.name}.yaml"
            if f.exists():
                out.append((f.relative_to(folder).as_posix(), f.read_bytes()))
    return out


def _dated_regime_tables(folder: Path) -> dict[str, list[dict]]:
    import yaml

    tables: dict[str, list[dict]] = {}
    for relative, raw in _dated_regime_files(folder):
        topic, regime_dir = relative.split("/")[:2]
        doc = yaml.safe_load(raw) or {}
        regime = str(doc.get("regime", regime_dir))
        row = {"regime": regime}
        for key, value in doc.items():
            if isinstance(value, list):
                tables.setdefault(f"{topic}_{key}", []).extend({"regime": regime, **r} for r in value)
            elif key != "regime":
                row[key] = value
        tables.setdefault(f"{topic}_regimes", []).append(row)
    return tables


def unconfirmed_values(policy: Policy) -> list[dict]:
    """Every policy row or section marked `unconfirmed: true`, as {where, value, basis, note}:
    what docs/FEEDS.md and the publication report list as not confirmed against the text."""
    out: list[dict] = []

    def walk(where: str, node) -> None:
        if isinstance(node, dict):
            if node.get("unconfirmed") is True:
                # the cited text is `basis` (measures, publicity) or `source` (regimes' rows)
                cite = "basis" if node.get("basis") else "source"
                shown = {k: v for k, v in node.items() if k not in ("unconfirmed", cite, "note")}
                out.append(
                    {
                        "where": where,
                        "value": ", ".join(f"{k}={v}" for k, v in shown.items()),
                        "basis": str(node.get(cite) or ""),
                        "note": str(node.get("note", "")),
                    }
                )
            for k, v in node.items():
                if isinstance(v, (dict, list)):
                    walk(f"{where}.{k}" if where else str(k), v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(f"{where}[{i}]", v)

    walk("", policy.doc)
    return out


def policy_for(day: date | None = None) -> Policy:
    """The policy in force on `day` (the latest `effective_from` not after it)."""
    pols = load_policies(policy_root())
    if day is None:
        return pols[-1]
    eligible = [p for p in pols if p.effective_from <= day]
    return eligible[-1] if eligible else pols[0]
