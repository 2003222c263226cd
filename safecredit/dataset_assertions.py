"""Declarative assertions a dataset's contract makes about the whole dataset, after each staging
(the way zavod's dataset YAML does): `contracts/datasets/<dataset>.yaml`, block `assertions:`.

    assertions:
      min_current: 1              # records in force at least (an empty registry is a broken feed)
      max_current: 50000000       # … and at most
      max_quarantine_share: 0.25  # of all landed versions, at most this share held in quarantine

Each is judged in DuckDB over `staged.<dataset>_current`, `raw.<dataset>` and `quality.violations`;
Dagster runs them as a blocking check (`staged/<dataset>` · `dataset_assertions`), so a failure
stops the rules and the publication with the message below.
"""

from __future__ import annotations

from functools import cache

import duckdb

from safecredit.config import CONTRACTS_DIR

KNOWN = ("min_current", "max_current", "max_quarantine_share")


@cache
def assertions_of(dataset: str) -> dict[str, float]:
    import yaml

    from safecredit.errors import ConfigError

    doc = yaml.safe_load((CONTRACTS_DIR / "datasets" / f"{dataset}.yaml").read_text(encoding="utf-8")) or {}
    found = dict(doc.get("assertions") or {})
    unknown = sorted(set(found) - set(KNOWN))
    if unknown:
        raise ConfigError(
            f"contracts/datasets/{dataset}.yaml：未知的断言 {', '.join(unknown)}（可用：{', '.join(KNOWN)}）",
            f"contracts/datasets/{dataset}.yaml: unknown assertion(s) {', '.join(unknown)} (known: {', '.join(KNOWN)})",
        )
    return {k: float(v) for k, v in found.items()}


def failures(con: duckdb.DuckDBPyConnection, dataset: str) -> tuple[list[dict], dict]:
    """(failed assertions with bilingual messages, the measured values)."""
    want = assertions_of(dataset)
    current, raw, quarantined = con.execute(
        f"""SELECT
        (SELECT count(*) FROM staged.{dataset}_current), (SELECT count(*) FROM raw.{dataset}),
        (SELECT count(DISTINCT (department, fetch_id, seq)) FROM quality.violations
          WHERE dataset = ? AND severity = 'quarantine')""",
        [dataset],
    ).fetchone()
    share = quarantined / raw if raw else 0.0
    measured = {"current": current, "raw": raw, "quarantined": quarantined, "quarantine_share": round(share, 4)}
    out = []
    if "min_current" in want and current < want["min_current"]:
        out.append(
            (
                "min_current",
                f"{dataset}: {current} record(s) in force, fewer than the contract's minimum {want['min_current']:g}",
                f"{dataset}：现行记录 {current} 条，少于数据契约规定的最少 {want['min_current']:g} 条",
            )
        )
    if "max_current" in want and current > want["max_current"]:
        out.append(
            (
                "max_current",
                f"{dataset}: {current} record(s) in force, more than the contract's maximum {want['max_current']:g}",
                f"{dataset}：现行记录 {current} 条，多于数据契约规定的最多 {want['max_current']:g} 条",
            )
        )
    if "max_quarantine_share" in want and share > want["max_quarantine_share"]:
        out.append(
            (
                "max_quarantine_share",
                f"{dataset}: {quarantined} of {raw} landed versions quarantined ({share:.1%}), above the "
                f"contract's {want['max_quarantine_share']:.0%}",
                f"{dataset}：已落地的 {raw} 个版本中 {quarantined} 个被隔离（{share:.1%}），超过数据契约规定的 "
                f"{want['max_quarantine_share']:.0%}",
            )
        )
    return [{"assertion": a, "dataset": dataset, "message": f"{en} / {zh}"} for a, en, zh in out], measured
