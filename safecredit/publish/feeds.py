"""The feed registry of exchange.md §1: stable id columns, reading scope, column dictionary.

The column dictionary maps a column name to (中文表头, description). It gives the CSV's Chinese
headers and the feed documentation (`feed_docs_markdown`). It is plain data: to document a new
column add a line; a column that is not in the dictionary is still published, under its own name.
Only the columns a table actually has are written, in the table's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

FEED_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Columns = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class FeedSpec:
    """How one feed is published (not what it contains: the rules compute that)."""

    name: str
    title: str  # 中文名称
    scope: str  # API scope that may read the feed's files (exchange.md §2)
    id_columns: tuple[str, ...]  # stable id of a row across versions (delta key)
    columns: Columns = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not FEED_NAME_RE.match(self.name):
            raise ValueError(f"bad feed name {self.name!r}")
        if not self.id_columns:
            raise ValueError(f"feed {self.name}: id_columns must name at least one column")
        object.__setattr__(self, "id_columns", tuple(self.id_columns))
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    def header(self, column: str) -> str:
        """The CSV header of `column`: its Chinese name, else the column name itself."""
        entry = self.columns.get(column)
        return entry[0] if entry else column

    def headers(self, columns: list[str]) -> list[str]:
        return [self.header(c) for c in columns]

    def describe(self, column: str) -> str:
        entry = self.columns.get(column)
        return entry[1] if entry else ""


# Columns shared by several feeds: run-level values some feeds repeat in each row.
_COMMON: dict[str, tuple[str, str]] = {
    "policy_version": ("政策版本", "计算本行所依据的政策文件版本 / policy files version the row was computed with"),
    "as_of": ("数据截止日期", "本次发布的业务日期（YYYY-MM-DD）/ business date of the publication"),
}

_SUBJECT: dict[str, tuple[str, str]] = {
    "subject_type": ("主体类型", "unit（单位）或 person（个人）"),
    "subject_id": ("主体标识", "稳定主体标识：单位为统一社会信用代码，个人为身份证号的带密钥哈希"),
    "subject_code": ("统一社会信用代码/证件号码", "单位为统一社会信用代码；个人证件号仅保留后4位"),
    "subject_code_masked": ("证件号码（脱敏）", "除后4位外以*遮蔽 / all but the last 4 characters masked"),
    "name": ("主体名称", "单位名称或个人姓名"),
    "uscc": ("统一社会信用代码", "18位统一社会信用代码 / unified social credit code"),
}

_DECISION: dict[str, tuple[str, str]] = {
    "basis": ("依据", "列入或处罚所依据的法律法规条款"),
    "decision_no": ("决定文书号", "认定或处罚决定书文号"),
    "authority": ("决定机关", "作出决定的机关名称"),
    "authority_code": ("决定机关统一社会信用代码", "作出决定的机关的统一社会信用代码"),
    "decision_date": ("决定日期", "决定书作出日期（YYYY-MM-DD）"),
}

BLACKLIST_COLUMNS: dict[str, tuple[str, str]] = {
    "entry_id": ("名单条目编号", "稳定条目标识，由决定机关、文号、事由和主体派生，跨版本不变"),
    **_SUBJECT,
    "legal_representative": ("法定代表人", "单位的法定代表人或主要负责人姓名"),
    "ground": ("列入事由代码", "列入严重失信主体名单的事由代码（如 A1）"),
    "ground_name": ("列入事由", "列入事由的中文说明"),
    **_DECISION,
    "start_date": ("列入日期", "列入名单生效日期（YYYY-MM-DD）"),
    "end_date": ("移出日期", "依规定应移出名单的日期（YYYY-MM-DD），空表示未定"),
    "status": ("状态", "pending|listed|expired|repaired|objection_upheld|revoked"),
    "status_date": ("状态日期", "当前状态的起始日期（YYYY-MM-DD）"),
    "status_reason": ("状态说明", "移出、修复、撤销等状态变化的原因"),
    "publication_end": ("公示截止日期", "对外公示的截止日期（YYYY-MM-DD）"),
    "source_department": ("来源部门", "提供该决定的部门标识"),
    **_COMMON,
}

RESTRICTIONS_COLUMNS: dict[str, tuple[str, str]] = {
    "entry_id": ("名单条目编号", "所依据的名单条目编号"),
    **_SUBJECT,
    "matter": ("惩戒事项代码", "government_procurement、public_bidding 等（exchange.md §2）"),
    "matter_name": ("惩戒事项", "惩戒事项的中文名称"),
    "measure": ("惩戒措施", "对该事项采取的措施"),
    "restricted_from": ("限制起始日期", "YYYY-MM-DD"),
    "restricted_until": ("限制截止日期", "YYYY-MM-DD，空表示随名单移出而终止"),
    "basis": ("依据", "联合惩戒措施所依据的文件条款"),
    "ground": ("列入事由代码", "所依据名单条目的事由代码"),
    "status": ("状态", "所依据名单条目的状态"),
    **_COMMON,
}

PENALTIES_PUBLIC_COLUMNS: dict[str, tuple[str, str]] = {
    "penalty_id": ("处罚记录编号", "稳定处罚记录标识，跨版本不变"),
    **_SUBJECT,
    "legal_representative": ("法定代表人", "单位的法定代表人姓名（双公示字段）"),
    "case_name": ("案件名称", "行政处罚案件名称"),
    "violation": ("违法行为类型", "违法行为类型"),
    "facts": ("违法事实", "主要违法事实"),
    "penalty_type": ("处罚类别", "警告、罚款、责令停产停业等"),
    "penalty_content": ("处罚内容", "处罚决定内容"),
    "fine_amount": ("罚款金额（万元）", "罚款金额，单位万元"),
    **_DECISION,
    "publication_start": ("公示起始日期", "YYYY-MM-DD"),
    "publication_end": ("公示截止日期", "YYYY-MM-DD"),
    "status": ("状态", "在公示期内的处罚状态（如 effective、revoked）"),
    "source_department": ("来源部门", "提供该处罚的部门标识"),
    **_COMMON,
}

CREDIT_SCORES_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _SUBJECT["uscc"],
    "name": ("单位名称", "单位名称"),
    "score": ("信用分", "安全生产信用评分"),
    "grade": ("信用等级", "A/B/C/D 等级"),
    "components": ("评分构成", "各评分项及其得分（JSON）"),
    "valid_from": ("有效期起", "YYYY-MM-DD"),
    "valid_until": ("有效期止", "YYYY-MM-DD"),
    **_COMMON,
}

PREMIUM_FACTORS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _SUBJECT["uscc"],
    "name": ("单位名称", "单位名称"),
    "factor": ("费率浮动系数", "安全生产责任保险费率浮动系数"),
    "components": ("系数构成", "各浮动因素及其取值（JSON）"),
    "valid_from": ("有效期起", "YYYY-MM-DD"),
    "valid_until": ("有效期止", "YYYY-MM-DD"),
    **_COMMON,
}

INTERMEDIARY_RATINGS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _SUBJECT["uscc"],
    "name": ("机构名称", "安全生产中介服务机构名称"),
    "rating": ("信用评级", "中介机构信用评级"),
    "score": ("评分", "中介机构信用评分"),
    "rating_date": ("评级日期", "YYYY-MM-DD"),
    "valid_until": ("有效期止", "YYYY-MM-DD"),
    "rating_authority": ("评级机关", "作出评级的机关"),
    **_COMMON,
}


def _registry(*specs: FeedSpec) -> Mapping[str, FeedSpec]:
    return MappingProxyType({s.name: s for s in specs})


FEEDS: Mapping[str, FeedSpec] = _registry(
    FeedSpec("blacklist", "安全生产严重失信主体名单", "lists:read", ("entry_id",), BLACKLIST_COLUMNS,
             "单位和个人；已移出的条目保留，附状态和日期。"),
    FeedSpec("restrictions", "联合惩戒措施", "lists:read", ("entry_id", "matter"), RESTRICTIONS_COLUMNS,
             "每个被列入主体 × 惩戒事项一行。"),
    FeedSpec("penalties_public", "行政处罚公示（双公示）", "lists:read", ("penalty_id",),
             PENALTIES_PUBLIC_COLUMNS, "处于公示期内的行政处罚。"),
    FeedSpec("credit_scores", "安全生产信用评分", "credit:read", ("uscc",), CREDIT_SCORES_COLUMNS),
    FeedSpec("premium_factors", "安责险费率浮动系数", "premium:read", ("uscc",), PREMIUM_FACTORS_COLUMNS),
    FeedSpec("intermediary_ratings", "中介机构信用评级", "lists:read", ("uscc",),
             INTERMEDIARY_RATINGS_COLUMNS),
)


def feed_docs_markdown(spec: FeedSpec) -> str:
    """A Markdown section documenting a feed's columns (for docs and the publication report)."""
    lines = [
        f"### `{spec.name}` — {spec.title}",
        "",
        *([spec.description, ""] if spec.description else []),
        f"- scope: `{spec.scope}`; stable id: {', '.join(f'`{c}`' for c in spec.id_columns)}",
        "",
        "| column | 表头 | description |",
        "|---|---|---|",
    ]
    for name, (header, desc) in spec.columns.items():
        lines.append(f"| `{name}` | {header} | {desc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
