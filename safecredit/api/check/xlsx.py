"""The check report as .xlsx (openpyxl): the frame, one row per code and entry, the codes not checked.

The workbook's creation time is the check's time (openpyxl stamps `modified` with the moment of
saving, so two downloads of one check differ in that stamp only)."""

from __future__ import annotations

import io

from .checking import STATUS_NAMES, Check
from .render import decision_kind

RESULT_HEADERS = (
    "序号",
    "代码",
    "类型",
    "名称",
    "结论",
    "守信激励",
    "名单编号",
    "列入事由",
    "依据",
    "决定文书号",
    "认定机关",
    "决定日期",
    "起始日期",
    "截止日期",
    "状态",
    "认定方式",
    "惩戒措施",
)


def _measures_of(row: dict, entry_id: str | None) -> str:
    return "；".join(
        f"{m.get('name') or m.get('measure')}（{m.get('matter')}）"
        for m in row.get("measures") or []
        if entry_id is None or m.get("entry_id") == entry_id
    )


def report_xlsx(check: Check) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.properties.created = check.at.replace(tzinfo=None, microsecond=0)
    wb.properties.creator = "SafeCredit Exchange"
    ws = wb.active
    ws.title = "核查结果"
    frame = [
        ("核查编号", check.check_id),
        ("核查时间（北京时间）", check.at_local),
        ("核查单位", check.consumer),
        ("核查事项", f"{check.matter_name}（{check.matter}）" if check.matter else check.matter_name),
        ("核查基准日", str(check.as_of or check.publication_as_of or "")),
        ("数据版本", check.version or ""),
        ("签名公钥指纹 SHA-256", check.signing_key.get("fingerprint") or f"key id {check.signing_key.get('key_id')}"),
        (
            "已核查 / 受限 / 未受理 / 重复",
            f"{len(check.rows)} / {check.restricted} / {len(check.malformed)} / {check.duplicates}",
        ),
    ]
    for label, value in frame:
        ws.append([label, value])
        ws.cell(ws.max_row, 1).font = Font(bold=True)
    ws.append([])
    ws.append(list(RESULT_HEADERS))
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for i, r in enumerate(check.rows, start=1):
        head = [
            i,
            r["code"],
            "单位" if r["subject_type"] == "unit" else "个人",
            r.get("name") or "",
            "受限" if r["restricted"] else "不受限",
            "符合" if r.get("incentive") else "",  # 守信激励 shown where the unit qualifies
        ]
        entries = r.get("listings") or []
        if not entries:
            ws.append([*head, *[""] * 10, _measures_of(r, None)])
        for e in entries:
            ws.append(
                [
                    *head,
                    e.get("entry_id"),
                    e.get("ground_name") or e.get("ground"),
                    e.get("basis"),
                    e.get("decision_no"),
                    e.get("authority"),
                    e.get("decision_date"),
                    e.get("start_date"),
                    e.get("end_date"),
                    STATUS_NAMES.get(e.get("status"), e.get("status")),
                    decision_kind(e),
                    _measures_of(r, e.get("entry_id")),
                ]
            )
    for col, width in zip("ABCDEFGHIJKLMNOPQ", (6, 22, 6, 28, 8, 8, 19, 22, 30, 22, 22, 11, 11, 11, 10, 12, 40)):
        ws.column_dimensions[col].width = width
    bad = wb.create_sheet("未受理代码")
    bad.append(["行", "输入", "原因"])
    for m in check.malformed:
        bad.append([m.line, m.shown, m.reason])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
