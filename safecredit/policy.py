"""Versioned policy data (contracts/policy/*.yaml): the configurable defaults of rules.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
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

    def working_days(self, start: date, end: date) -> list[tuple[date, bool]]:
        """(day, is working day) for start..end inclusive: Mon–Fri less holidays plus make-up days."""
        cal = self.doc.get("calendar", {})
        holidays = set(_expand(cal.get("holidays", [])))
        makeup = set(_expand(cal.get("makeup_workdays", [])))
        out = []
        d = start
        while d <= end:
            working = (d.weekday() < 5 and d not in holidays) or d in makeup
            out.append((d, working))
            d += timedelta(days=1)
        return out


def _expand(items) -> list[date]:
    out = []
    for it in items:
        if isinstance(it, (list, tuple)):
            a, b = (x if isinstance(x, date) else date.fromisoformat(str(x)) for x in it)
            while a <= b:
                out.append(a)
                a += timedelta(days=1)
        else:
            out.append(it if isinstance(it, date) else date.fromisoformat(str(it)))
    return out


@lru_cache(maxsize=None)
def load_policies(root: Path = CONTRACTS_DIR / "policy") -> tuple[Policy, ...]:
    import yaml

    out = []
    for p in sorted(root.glob("*.yaml")):
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        eff = doc.get("effective_from", date(1900, 1, 1))
        out.append(Policy(doc.get("policy", p.stem), str(doc["version"]),
                          eff if isinstance(eff, date) else date.fromisoformat(str(eff)), doc))
    return tuple(sorted(out, key=lambda p: p.effective_from))


def policy_for(day: date | None = None) -> Policy:
    """The policy in force on `day` (the latest `effective_from` not after it)."""
    pols = load_policies()
    if day is None:
        return pols[-1]
    eligible = [p for p in pols if p.effective_from <= day]
    return eligible[-1] if eligible else pols[0]
