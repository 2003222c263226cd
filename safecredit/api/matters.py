"""The matters a restriction answer can be narrowed to: exchange.md §2's fixed vocabulary and the
measures the served publication names (read once per snapshot)."""

from __future__ import annotations

from .problems import ApiProblem
from .snapshot import Snapshot

#: exchange.md §2: the matters approval offices ask about; never renamed (the policy may add more).
MATTERS: dict[str, str] = {
    "government_procurement": "政府采购",
    "public_bidding": "工程招投标",
    "state_land": "国有土地出让",
    "project_approval": "新增项目核准",
    "mining_rights": "采矿权取得",
    "securities_financing": "证券融资",
    "policy_funds": "政策性资金扶持",
    "bank_credit": "银行贷款参考",
    "qualification": "资质审核",
    "honours": "评先评优",
    "insurance_rate": "保险费率上浮",
    "tax_incentives": "税收优惠",
    "market_entry": "市场禁入",
    "standardization": "安全生产标准化评审",
    "principal_role": "担任主要负责人",
    # rules.md §4 names these two as well (the 六安 seed): askable even while no subject is
    # restricted in them (出入境: a listing never is, only a court or the law's own cases)
    "import_export": "进出口",
    "exit_entry": "出入境",
}


def known_matters(snap: Snapshot, cur) -> dict[str, str]:
    """matter → name: the fixed ones (exchange.md §2), then those the publication's restrictions
    and restriction timeline name (the measures the policy adds), read once per snapshot."""
    known = snap.cache.get("known_matters")
    if known is not None:  # once per snapshot: every answer checks its matter
        return known
    published = snap.cache.get("published_matters")
    if published is None:
        published = {}
        for feed in ("restrictions", "restriction_timeline"):
            columns = set(snap.feeds[feed].columns) if snap.has(feed) else set()
            if "matter" not in columns:
                continue
            name = "any_value(measure_name)" if "measure_name" in columns else "matter"
            for matter, measure_name in cur.execute(
                f'SELECT matter, {name} FROM "{feed}" WHERE matter IS NOT NULL GROUP BY matter ORDER BY matter'
            ).fetchall():
                published.setdefault(matter, measure_name or matter)
        snap.cache["published_matters"] = published
    out = dict(MATTERS)
    for k, v in published.items():
        out.setdefault(k, v)
    snap.cache["known_matters"] = out
    return out


def check_matter(matter: str | None, matters: dict[str, str]) -> str | None:
    if matter is None or matter == "":
        return None
    if matter not in matters:
        raise ApiProblem(
            422,
            f"unknown matter {matter[:40]!r}; one of: {', '.join(sorted(matters))}",
            f"未知的惩戒事项 {matter[:40]!r}",
            kind="unknown-matter",
        )
    return matter
