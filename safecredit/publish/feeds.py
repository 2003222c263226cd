"""The feed registry of exchange.md §1: stable id columns, reading scope, column dictionary.

The column dictionary maps a column name to (中文表头, description). It gives the CSV's Chinese
headers and the feed documentation (`feed_docs_markdown`). It is plain data: to document a new
column add a line; a column that is not in the dictionary is still published, under its own name.
Only the columns a table actually has are written, in the table's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

FEED_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

Columns = Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class FeedSpec:
    """How one feed is published (not what it contains: the rules compute that)."""

    name: str
    title: str  # 中文名称
    scope: str | None  # API scope that may read the feed's files (exchange.md §2); None: any valid key
    id_columns: tuple[str, ...]  # stable id of a row across versions (delta key)
    columns: Columns = field(default_factory=dict)
    description: str = ""
    # Columns holding a unit's USCC, and those holding a subject's code where `subject_type` is
    # 'unit'. Some valid USCCs (11 of 200,000 in the demo city) also pass every check of an ID
    # number; there they are what the column says, not a person's number left unmasked.
    unit_codes: tuple[str, ...] = ()
    subject_codes: tuple[str, ...] = ()
    # The rule tables the feed is split off (issue 10 §6); empty: its own `rules.<name>`.
    built_from: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not FEED_NAME_RE.match(self.name):
            raise ValueError(f"bad feed name {self.name!r}")
        if not self.id_columns:
            raise ValueError(f"feed {self.name}: id_columns must name at least one column")
        object.__setattr__(self, "id_columns", tuple(self.id_columns))
        object.__setattr__(self, "unit_codes", tuple(self.unit_codes))
        object.__setattr__(self, "subject_codes", tuple(self.subject_codes))
        object.__setattr__(self, "built_from", tuple(self.built_from))
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))

    @property
    def rule_tables(self) -> tuple[str, ...]:
        """The `rules.<table>`s the feed's rows come from."""
        return self.built_from or (self.name,)

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
# (`as_of`, the publication's business date, is the same for every row: it is in the manifest.)
_COMMON: dict[str, tuple[str, str]] = {
    "policy_version": ("政策版本", "计算本行所依据的政策文件版本 / policy files version the row was computed with"),
}

_SUBJECT: dict[str, tuple[str, str]] = {
    "subject_type": ("主体类型", "unit（单位）或 person（个人）"),
    "subject_id": ("主体标识", "稳定主体标识：单位为统一社会信用代码，个人为身份证号的带密钥哈希"),
    "subject_code": ("统一社会信用代码/证件号码", "单位为统一社会信用代码；个人证件号仅保留后4位"),
    "name": ("主体名称", "单位名称或个人姓名"),
}

_USCC = ("统一社会信用代码", "18位统一社会信用代码 / unified social credit code")

_DECISION: dict[str, tuple[str, str]] = {
    "decision_no": ("决定文书号", "认定或处罚决定书文号"),
    "authority": ("决定机关", "作出决定的机关名称"),
    "authority_code": ("决定机关统一社会信用代码", "作出决定的机关的统一社会信用代码"),
    "decision_date": ("决定日期", "决定书作出日期（YYYY-MM-DD）"),
}

# The list regime of an entry (rules.md §3; contracts/policy/default/regimes.yaml)
_REGIME: dict[str, tuple[str, str]] = {
    "regime": (
        "所属名单",
        "aq11（应急管理部令第11号，应急管理部门决定、第二条范围内）或 industry（其他部门各自的名单）",
    ),
    "basis": ("列入依据", "所属名单的依据：aq11 为应急管理部令第11号；industry 为决定部门自己的依据（regimes.yaml）"),
    "decided": (
        "已作出列入决定",
        "true：有书面列入决定书（listing_decisions）；false：按处罚推定"
        "（B4 及 decisions: complete 部门的推定条目不限制）",
    ),
}

BLACKLIST_COLUMNS: dict[str, tuple[str, str]] = {
    "entry_id": ("名单条目编号", "稳定条目标识，由决定机关、文号、事由和主体派生，跨版本不变"),
    **_SUBJECT,
    "role": (
        "列入身份",
        "penalised unit（受罚单位）/ other penalised unit（同一事故其他受罚单位，A1）/ principal（主要负责人）"
        "/ penalised person（受罚个人）/ decided unit, decided person（仅有列入决定）",
    ),
    "ground": ("列入事由代码", "列入严重失信主体名单的事由代码（A1–A5、B1–B4，应急管理部令第11号）"),
    "ground_name": ("列入事由", "列入事由的中文说明"),
    **_REGIME,
    "listing_decision_no": ("列入决定书文号", "与条目匹配的列入决定书文号（MD_WSH），推定条目为空"),
    "listing_decision_date": ("列入决定日期", "列入决定书的决定日期（YYYY-MM-DD），推定条目为空"),
    "awaits_decision": (
        "待列入决定",
        "true：推定条目，所属名单不允许其未经决定即限制（B4，或 decisions: complete 的部门），"
        "在作出列入决定前保持 pending",
    ),
    "penalty_basis": ("处罚依据", "触发列入的行政处罚决定所依据的条款（CF_YJ）"),
    **_DECISION,
    "start_date": ("列入日期", "告知期（工作日）满后的列入日期（YYYY-MM-DD）"),
    "end_date": ("管理期届满日期", "列入日期加管理期（3年），不含当日（YYYY-MM-DD）"),
    "status": ("状态", "pending|listed|expired|repaired|objection_upheld|revoked；仅 listed 限制"),
    "status_date": ("状态日期", "当前状态的起始日期（YYYY-MM-DD）"),
    "calendar_gap_year": (
        "待公布日历年份",
        "告知期延伸至尚无国务院办公厅节假日安排的年份时为该年份（条目保持 pending，"
        "不列入）；否则为空 / year without a published holiday calendar that the notice "
        "period reaches (entry stays pending)",
    ),
    "principal_gap": (
        "主要负责人不明",
        "true：该事由应同时列入单位当时的主要负责人，但处罚、事故及当时的监管对象库版本均未载明，"
        "未列入（不以继任者替代） / the ground lists the unit's principal but none of the time is known",
    ),
    "repair_date": ("信用修复日期", "信用修复生效日期（列入满12个月后），无则为空"),
    "objection_date": ("异议成立日期", "异议成立的日期，无则为空"),
    "revoked_date": ("撤销日期", "触发处罚被撤销或更正后不再符合的日期，无则为空"),
    "source_department": ("来源部门", "报送触发处罚决定的部门标识"),
    "source_record_id": ("来源记录编号", "触发处罚决定在来源部门的 record_id"),
    "trigger_accident": ("关联事故编号", "事故类事由所依据的事故编号（SG_BH）"),
    **_COMMON,
}

RESTRICTIONS_COLUMNS: dict[str, tuple[str, str]] = {
    "restriction_id": (
        "惩戒记录编号",
        "稳定标识（来源、条目编号与事项派生），跨版本不变；与 entry_id + matter 一一对应",
    ),
    "source": ("惩戒来源", "listing（名单条目）或 ban（个人处罚所示的法定禁止）"),
    "entry_id": ("名单条目编号", "所依据的名单条目编号；法定禁止（source = ban）为 B 开头的禁止编号"),
    "regime": ("所属名单", "所依据名单条目的所属名单（aq11 / industry）；法定禁止为空"),
    "listing_basis": ("列入依据", "所依据名单条目的列入依据；法定禁止为空"),
    "decided": ("已作出列入决定", "所依据名单条目有书面列入决定时为 true；法定禁止由处罚决定本身作出，为 true"),
    "penalty_id": ("处罚记录编号", "名单条目或法定禁止所依据的处罚决定编号，同 penalties_public"),
    "ban": ("禁止类型", "法定禁止的类型（如 practice_ban 限制从业、major_accident_principal 终身禁入）"),
    **_SUBJECT,
    "ground": ("列入事由代码", "所依据名单条目的事由代码"),
    "matter": ("惩戒事项代码", "government_procurement、public_bidding 等（exchange.md §2）"),
    "measure_name": ("惩戒事项", "惩戒事项的中文名称"),
    "measure": ("惩戒措施", "对该事项采取的措施"),
    "implementing_department": ("实施部门", "实施该措施的部门"),
    "basis": ("依据", "该惩戒措施自身的法律或文件依据（政策数据 measures.basis）"),
    "basis_unconfirmed": ("依据待核实", "true 表示该依据的条款未能与原文核对（政策中标记 unconfirmed）"),
    "scope_industry": ("限制行业范围", "仅限本行业时的行业；空表示不限行业"),
    "restricted_from": ("限制起始日期", "YYYY-MM-DD"),
    "restricted_until": ("限制截止日期", "YYYY-MM-DD，当日起解除（不含当日）；空表示终身"),
    "for_life": ("终身", "true 表示终身禁止"),
    "status": ("状态", "名单条目的状态（仅 listed 限制），法定禁止为 in_force"),
    "decision_no": ("决定文书号", "名单条目或禁止所依据的处罚决定书文号"),
    "authority": ("决定机关", "作出处罚决定的机关名称"),
    "authority_code": ("决定机关统一社会信用代码", "作出处罚决定的机关的统一社会信用代码"),
    **_COMMON,
}

# The interval of `as_of` dates a timeline row answers (rules/33_listing_timeline.sql)
_VALIDITY: dict[str, tuple[str, str]] = {
    "valid_from": ("适用起始日", "本行所述情况自该查询日期（as_of）起成立（YYYY-MM-DD）"),
    "valid_until": ("适用截止日", "本行所述情况至该查询日期前一日止（不含当日，YYYY-MM-DD）；空表示此后一直成立"),
}

LISTING_TIMELINE_COLUMNS: dict[str, tuple[str, str]] = {
    **{k: v for k, v in BLACKLIST_COLUMNS.items() if k in ("entry_id",)},
    **_VALIDITY,
    **{
        k: v
        for k, v in BLACKLIST_COLUMNS.items()
        if k in (*_SUBJECT, "role", "ground", "ground_name", *_REGIME, *_DECISION, "start_date", "end_date", "status")
    },
    "status": (
        "状态",
        "以该期间内的日期为 as_of 时条目的状态（pending|listed|expired|repaired|objection_upheld|revoked）",
    ),
    **_COMMON,
}

RESTRICTION_TIMELINE_COLUMNS: dict[str, tuple[str, str]] = {
    **{k: v for k, v in RESTRICTIONS_COLUMNS.items() if k != "as_of"},
    **_VALIDITY,
}

PENALTIES_PUBLIC_COLUMNS: dict[str, tuple[str, str]] = {
    "penalty_id": ("处罚记录编号", "稳定处罚记录标识（处罚机关代码与决定书文号派生），跨版本不变"),
    **_SUBJECT,
    "subject_category": ("行政相对人类别", "法人及非法人组织 / 个体工商户 / 自然人"),
    "id_type": ("证件类型", "自然人的证件类型"),
    "legal_representative": ("法定代表人", "单位的法定代表人姓名（双公示字段）"),
    "decision_no": ("行政处罚决定书文号", "行政处罚决定书文号"),
    "violation_type": ("违法行为类型", "违法行为类型"),
    "facts": ("违法事实", "主要违法事实"),
    "basis": ("处罚依据", "处罚所依据的法律法规条款"),
    "penalty_types": ("处罚类别", "警告、罚款、责令停产停业等（列表）"),
    "content": ("处罚内容", "处罚决定内容"),
    "fine_wan": ("罚款金额（万元）", "罚款金额，单位万元"),
    "confiscated_wan": ("没收违法所得、没收非法财物的金额（万元）", "单位万元"),
    "licence_affected": ("暂扣或吊销证照名称及编号", "暂扣或吊销的证照名称及编号"),
    "decision_date": ("处罚决定日期", "YYYY-MM-DD"),
    "effect_until": ("处罚有效期", "处罚效力截止日期，空表示无截止"),
    "authority": ("处罚机关", "作出处罚决定的机关名称"),
    "authority_code": ("处罚机关统一社会信用代码", "作出处罚决定的机关的统一社会信用代码"),
    "data_source": ("数据来源单位", "提供该处罚的单位"),
    "data_source_code": ("数据来源单位统一社会信用代码", "数据来源单位的统一社会信用代码"),
    "publicity_class": ("失信程度", "轻微 / 一般 / 严重（决定公示期限）"),
    "publicity_basis": (
        "公示期限依据",
        "处罚决定日期当日施行的公示规定：发改办财金〔2019〕527号、国家发展改革委令第58号（2023-05-01 起）"
        "或第36号（2026-04-01 起）/ the publicity rules in force on the decision date",
    ),
    "publicity_start": ("公示起始日期", "YYYY-MM-DD（处罚决定日期）"),
    "publicity_until": ("公示截止期", "YYYY-MM-DD，公示的最后一日（含）"),
    "source_department": ("来源部门", "提供该处罚的部门标识"),
    **_COMMON,
}

CREDIT_SCORES_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "name": ("单位名称", "单位名称"),
    "standardization": ("安全生产标准化等级", "一级/二级/三级/无，决定基础分"),
    "score": ("信用分", "安全生产信用评分（0–100）：基础分 + 扣分 + 加分，见 components"),
    "grade": ("信用等级", "A ≥ 85、B ≥ 70、C ≥ 60、D 低于 60 或强制（阈值为政策数据）"),
    "forced_d": ("强制D级", "true 表示因列入名单、较大事故等事由直接评为 D 级"),
    "forced_reasons": (
        "强制D级事由",
        "LISTED、MAJOR_ACCIDENT、REPEATED_ACCIDENTS、HIDDEN_DANGER_UNFIXED、CONCEALED_ACCIDENT",
    ),
    "incentive_eligible": ("守信激励", "true 表示数据可核验的守信条件均满足（安监总办〔2017〕133号）"),
    "incentive_conditions": (
        "守信条件",
        "各条件代码及其状态 met / not_met / not_checked（数据无法核验）（JSON）；条件名称见 codes"
        "（field = incentive_conditions）/ condition codes and statuses, labels in `codes`",
    ),
    "component_count": (
        "构成项数",
        "评分构成的项数：credit_score_components 中本单位的行数 / rows of this unit in credit_score_components",
    ),
    **_COMMON,
}

PREMIUM_FACTORS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "name": ("单位名称", "单位名称"),
    "mandatory": ("强制投保", "true 表示属于应当投保安全生产责任保险的高危行业领域"),
    "model": ("计算模型", "floating（浮动费率表）或 experience（经验费率 NCCI）"),
    "factor": ("费率浮动系数", "安全生产责任保险费率浮动系数（已按上下限截取）"),
    "uncapped_factor": ("未截取系数", "按上下限截取前的系数"),
    "cap_low": ("系数下限", "系数下限（1 + 政策下浮上限）"),
    "cap_high": ("系数上限", "系数上限（1 + 政策上浮上限）"),
    "listed": ("列入失信名单", "true 表示当前处于严重失信主体名单（listed）期间"),
    "valid_from": ("有效期起", "YYYY-MM-DD"),
    "valid_to": ("有效期止", "YYYY-MM-DD（含当日）"),
    **_COMMON,
}

INCENTIVES_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "name": ("单位名称", "单位名称"),
    "eligible": ("符合守信激励", "true 表示数据可核验的守信条件均满足（安监总办〔2017〕133号）"),
    "credit_grade": ("安全生产信用等级", "credit_scores 的等级 A/B/C/D"),
    "conditions": (
        "守信条件",
        "各条件代码及其状态 met / not_met / not_checked（数据无法核验）（JSON）；条件名称见 codes"
        "（field = conditions）/ condition codes and statuses, labels in `codes`",
    ),
    "conditions_not_met": ("未满足的条件", "状态为 not_met 的条件代码（列表）"),
    "conditions_not_checked": ("未核验的条件", "数据无法核验（not_checked）的条件代码（列表）"),
    "incentives": (
        "激励措施",
        "符合时可享受的守信激励措施目录：代码、名称、措施、实施部门、依据、依据是否待核实（JSON 列表；不符合时为空）",
    ),
    **_COMMON,
}

INJURY_INSURANCE_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "name": ("单位名称", "单位名称"),
    "industry_code": ("行业代码", "登记的国民经济行业代码（GB/T 4754）"),
    "division": ("行业大类", "行业代码的两位大类，用于确定工伤保险行业风险类别"),
    "injury_class": ("行业风险类别", "工伤保险行业风险类别 1–8（人社部发〔2015〕71号）"),
    "unclassified": ("未能归类", "true 表示行业代码未匹配任何大类，按政策默认类别计算"),
    "base_rate_percent": ("基准费率（%）", "该类别的行业基准费率，占工资总额的百分比"),
    "accidents": ("近3年事故起数", "窗口期内归属本单位的生产安全（责任）事故起数"),
    "deaths": ("近3年死亡人数", "上述事故的死亡人数"),
    "serious_injuries": ("近3年重伤人数", "上述事故的重伤人数"),
    "listed": ("列入失信名单", "true 表示当前处于严重失信主体名单（listed）期间"),
    "credit_grade": ("安全生产信用等级", "credit_scores 的等级 A/B/C/D"),
    "standardization": ("安全生产标准化等级", "一级/二级/三级/无"),
    "step": ("建议浮动档次", "相对基准费率的档次：-2 50%、-1 80%、0 100%、1 120%、2 150%"),
    "multiplier": ("浮动比例", "该档次对应的基准费率倍数"),
    "suggested_rate_percent": ("建议费率（%）", "基准费率 × 浮动比例，保留4位小数"),
    **_COMMON,
}

INTERMEDIARY_RATINGS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "name": ("机构名称", "安全生产技术服务机构名称"),
    "qualification_type": ("资质类型", "安全评价 / 检测检验 / 职业卫生技术服务 / 安全认证"),
    "certificate_no": ("资质证书编号", "资质证书编号"),
    "qualification_until": ("资质有效期至", "YYYY-MM-DD（最后有效日）"),
    "period": ("评定周期", "如 2026H1（半年度）"),
    "score": ("评定得分", "0–100"),
    "department_band": ("部门评定等级", "评定机关给出的等级 PJ_DJ（蓝/黄/橙/红）"),
    "score_band": ("得分对应等级", "按政策分档由评定得分得出的等级（蓝 ≥ 85，黄 70–85，橙 < 70）"),
    "band_source": ("等级来源", "department（部门等级）或 score（由得分得出）"),
    "band": ("公布等级", "公布的等级：部门等级（缺失时由得分得出），出现红色情形时为红"),
    "red_by_trigger": ("红色情形", "true 表示本平台数据显示红色情形"),
    "red_triggers": ("红色情形明细", "每一情形及其来源记录（JSON 列表）"),
    "linked_entry_ids": ("关联名单条目", "触发红色情形的严重失信名单条目编号"),
    "violations": ("违规情形", "评定记录中的违规情形（列表）"),
    "rating_authority": ("评定机关", "作出评定的机关"),
    "rating_date": ("评定日期", "YYYY-MM-DD"),
    "source_department": ("来源部门", "提供该评定的部门标识"),
    "source_record_id": ("来源记录编号", "评定记录的 record_id"),
    **_COMMON,
}


LISTING_CANDIDATES_COLUMNS: dict[str, tuple[str, str]] = {
    "entry_id": ("名单条目编号", "同 blacklist 的 entry_id"),
    "authority": ("决定机关", "应作出列入决定的机关（作出处罚决定的机关：谁处罚、谁决定）"),
    "authority_code": ("决定机关统一社会信用代码", "决定机关的统一社会信用代码；按此分发各机关的待办"),
    **_REGIME,
    "ground": ("列入事由代码", "A1–A5、B1–B4"),
    "ground_name": ("列入事由", "列入事由的中文说明"),
    **_SUBJECT,
    "role": (
        "列入身份",
        "penalised unit / other penalised unit / principal / penalised person / decided unit / decided person",
    ),
    "decision_no": ("处罚决定书文号", "触发列入的行政处罚决定书文号"),
    "decision_date": ("处罚决定日期", "YYYY-MM-DD"),
    "penalty_basis": ("处罚依据", "触发列入的行政处罚决定所依据的条款（CF_YJ）"),
    "trigger_accident": ("关联事故编号", "事故类事由所依据的事故编号（SG_BH）"),
    "source_department": ("来源部门", "报送触发处罚决定的部门标识"),
    "source_record_id": ("来源记录编号", "触发处罚决定在来源部门的 record_id"),
    "trigger_source": ("触发来源", "penalty（处罚决定）或 execution_status（执行状态为拒不执行）"),
    "notice_due_date": (
        "告知期届满日",
        "自起算日起告知期（工作日）届满之日：须在此前完成告知，列入方能按期开始（YYYY-MM-DD）",
    ),
    "decision_due_date": (
        "决定期限",
        "告知期加宽限期（listing_decisions.grace_working_days，默认10个工作日）届满之日（YYYY-MM-DD）",
    ),
    "status": ("状态", "pending（待决定，不限制）或 listed（按推定已限制，仍待书面决定）"),
    "restricts_inferred": ("推定限制", "true：未作决定但按所属名单的规则已限制（status = listed）"),
    "overdue": ("已逾期", "true：pending 且已过决定期限仍无列入决定（在运行摘要和报告中列出）"),
    "calendar_gap_year": ("待公布日历年份", "告知期延伸至尚无节假日安排的年份时为该年份"),
    **_COMMON,
}


# Issue 10 §6: components, worksheets and labels are published once, in feeds of their own
# (safecredit/publish/lean.py); the API joins them back into its answers.
CREDIT_SCORE_COMPONENTS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "seq": ("序号", "该项在本单位评分构成中的顺序（1 起）；与 uscc 共同构成稳定标识"),
    "component": ("构成代码", "BASE、CLEAN_RECORD、扣分类别（PENALTY_…、ACCIDENT_…）、REPEAT_PENALTIES 或强制D级事由"),
    "kind": ("类型", "base（基础分）/ deduction（扣分）/ bonus（加分）/ forced_d（强制D级，0分）"),
    "label": (
        "说明",
        "本项的说明；为空时即 codes 中该构成代码的说明（field = component）/ empty: the component's label in `codes`",
    ),
    "points": ("分值", "本项的分值（扣分为负数）"),
    "event_date": ("事件日期", "处罚决定或事故发生日期（YYYY-MM-DD），基础分与加分为空"),
    "source_dataset": ("来源数据集", "enterprises / penalties / accidents / blacklist"),
    "source_department": ("来源部门", "报送来源记录的部门标识"),
    "source_record_id": ("来源记录编号", "来源记录在来源部门的 record_id"),
    "decision_no_or_accident_no": ("文书号或事故编号", "处罚决定书文号或事故编号（SG_BH）"),
}

PREMIUM_WORKSHEETS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "worksheet": (
        "计算底稿",
        "复算 premium_factors 系数所需的全部输入：模型、上下限、名单条目、窗口期、各浮动因素的代码、次数、合计与状态"
        "（名称、取值、依据与跳过原因见 codes，field = worksheet.floating.adjustments）或经验费率各项（JSON）",
    ),
}

INJURY_INSURANCE_WORKSHEETS_COLUMNS: dict[str, tuple[str, str]] = {
    "uscc": _USCC,
    "worksheet": (
        "计算底稿",
        "复算 injury_insurance_factors 档次所需全部输入：类别、窗口期、事故明细、名单条目、信用等级、标准化等级、"
        "各浮动规则的代码与是否满足（名称、档次增减与依据见 codes，field = worksheet.rules；类别依据 "
        "class_basis 见 field = worksheet.class_basis，代码为类别）、合计、上下限、档次与倍数（JSON）",
    ),
}

CODES_COLUMNS: dict[str, tuple[str, str]] = {
    "feed": ("数据集", "使用该代码的数据集 / the feed whose rows carry the code"),
    "field": ("字段", "代码所在的列或底稿路径，如 incentive_conditions、worksheet.rules / column or worksheet path"),
    "code": (
        "代码",
        "行中出现的代码；`*` 为本版本每行相同的取值（如底稿的窗口期，行中为空）/ the code as it appears in "
        "the rows; `*`: a value the same in every row of the version (a worksheet's window, empty in the rows)",
    ),
    "label": ("名称", "代码的中文名称 / the code's label"),
    "value": ("取值", "政策规定的取值（文本：浮动比例、档次增减）/ the policy value, as text"),
    "basis": ("依据", "该取值或类别的政策、法规或地方做法依据 / legal or policy source"),
    "note": ("备注", "如暂无数据来源而跳过的原因 / e.g. why an adjustment is skipped"),
}

_UNIT_CODES = ("uscc", "authority_code", "data_source_code")


def _registry(*specs: FeedSpec) -> Mapping[str, FeedSpec]:
    """The feeds, each knowing which of its columns hold units' codes (by the shared column names)."""
    out = {}
    for s in specs:
        units = tuple(c for c in _UNIT_CODES if c in s.columns)
        subjects = tuple(c for c in ("subject_code", "subject_id") if c in s.columns and "subject_type" in s.columns)
        out[s.name] = replace(s, unit_codes=s.unit_codes or units, subject_codes=s.subject_codes or subjects)
    return MappingProxyType(out)


FEEDS: Mapping[str, FeedSpec] = _registry(
    FeedSpec(
        "blacklist",
        "安全生产严重失信主体名单",
        "lists:read",
        ("entry_id",),
        BLACKLIST_COLUMNS,
        "单位和个人；已移出的条目保留，附状态和日期。",
    ),
    FeedSpec(
        "restrictions",
        "联合惩戒措施",
        "lists:read",
        ("entry_id", "matter"),
        RESTRICTIONS_COLUMNS,
        "每个被列入主体 × 惩戒事项一行。",
    ),
    FeedSpec(
        "listing_timeline",
        "名单条目状态时间线",
        "lists:read",
        ("entry_id", "valid_from"),
        LISTING_TIMELINE_COLUMNS,
        "每个名单条目 × 状态期间一行：以期间内任一日期为 as_of 运行规则时该条目的状态与日期（今日所知）。"
        "GET /v1/restrictions/{code}?as_of= 的 listings 即本表在该日期的行。",
    ),
    FeedSpec(
        "restriction_timeline",
        "联合惩戒措施时间线",
        "lists:read",
        ("entry_id", "matter", "valid_from"),
        RESTRICTION_TIMELINE_COLUMNS,
        "每个主体 × 惩戒事项 × 期间一行：以期间内任一日期为 as_of 时有效的惩戒措施及其所依据的条目或禁止；"
        "restrictions 即本表在发布日期的行，GET /v1/restrictions/{code}?as_of= 的 measures 即本表在该日期的行。",
    ),
    FeedSpec(
        "penalties_public",
        "行政处罚公示（双公示）",
        "lists:read",
        ("penalty_id",),
        PENALTIES_PUBLIC_COLUMNS,
        "处于公示期内的行政处罚。",
    ),
    FeedSpec("credit_scores", "安全生产信用评分", "credit:read", ("uscc",), CREDIT_SCORES_COLUMNS),
    FeedSpec("premium_factors", "安责险费率浮动系数", "premium:read", ("uscc",), PREMIUM_FACTORS_COLUMNS),
    FeedSpec("intermediary_ratings", "中介机构信用评级", "lists:read", ("uscc",), INTERMEDIARY_RATINGS_COLUMNS),
    FeedSpec(
        "listing_candidates",
        "严重失信主体名单待决定事项",
        "candidates:read",
        ("entry_id",),
        LISTING_CANDIDATES_COLUMNS,
        "各决定机关的待办：未有书面列入决定、仍在告知或按推定限制的条目（rules.md §3）。仅供决定机关。",
    ),
    FeedSpec(
        "incentives",
        "守信联合激励",
        "restrictions:read",
        ("uscc",),
        INCENTIVES_COLUMNS,
        "每个登记单位一行：是否符合守信激励、各条件的核验状态、可享受的激励措施及其依据（rules.md §4、§6）。"
        "GET /v1/incentives/{uscc} 的答复即本表该单位的一行（条件名称取自 codes）。",
    ),
    FeedSpec(
        "credit_score_components",
        "安全生产信用评分构成",
        "credit:read",
        ("uscc", "seq"),
        CREDIT_SCORE_COMPONENTS_COLUMNS,
        "credit_scores 每个单位的评分构成，每项一行：基础分、扣分、加分及强制D级事由，各附来源记录。"
        "GET /v1/credit/{uscc} 的 components 即本表该单位的行（按 seq）。",
        built_from=("credit_scores",),
    ),
    FeedSpec(
        "premium_worksheets",
        "安责险费率计算底稿",
        "premium:read",
        ("uscc",),
        PREMIUM_WORKSHEETS_COLUMNS,
        "premium_factors 每个单位的计算底稿；GET /v1/premium-factors 的 worksheet 即本表该单位的一行与 codes 的说明。",
        built_from=("premium_factors",),
    ),
    FeedSpec(
        "injury_insurance_worksheets",
        "工伤保险浮动费率计算底稿",
        "premium:read",
        ("uscc",),
        INJURY_INSURANCE_WORKSHEETS_COLUMNS,
        "injury_insurance_factors 每个单位的计算底稿；GET /v1/injury-insurance 的 worksheet "
        "即本表该单位的一行与 codes 的说明。",
        built_from=("injury_insurance_factors",),
    ),
    FeedSpec(
        "codes",
        "代码表",
        None,
        ("feed", "field", "code"),
        CODES_COLUMNS,
        "其他数据集行中代码的名称、取值与依据，每个代码一行（任何有效密钥可读）。每次运行由各行本身得出："
        "同一代码只能有一种含义，否则发布中止。",
        built_from=("credit_scores", "incentives", "injury_insurance_factors", "premium_factors"),
    ),
    FeedSpec(
        "injury_insurance_factors",
        "工伤保险浮动费率建议",
        "premium:read",
        ("uscc",),
        INJURY_INSURANCE_COLUMNS,
        "每个登记单位一行：行业风险类别、基准费率、近3年事故与伤亡、名单状态、信用等级、标准化等级与建议浮动档次"
        "（rules.md §7a）。GET /v1/injury-insurance/{uscc} 的答复即本表该单位的一行及其底稿"
        "（injury_insurance_worksheets）。",
    ),
)


def feed_docs_markdown(spec: FeedSpec) -> str:
    """A Markdown section documenting a feed's columns (for docs and the publication report)."""
    scope = f"`{spec.scope}`" if spec.scope else "any valid key 任何有效密钥"
    lines = [
        f"### `{spec.name}` — {spec.title}",
        "",
        *([spec.description, ""] if spec.description else []),
        f"- scope: {scope}; stable id: {', '.join(f'`{c}`' for c in spec.id_columns)}",
        "",
        "| column | 表头 | description |",
        "|---|---|---|",
    ]
    for name, (header, desc) in spec.columns.items():
        lines.append(f"| `{name}` | {header} | {desc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
