"""The codes of one check, from the pasted text or an uploaded .csv/.xlsx (issue 14 §1).

Every entry is accounted for: valid codes (once each, in the order first given), malformed ones
with their line and reason (the API's own bilingual reason, `resolve_subject`), duplicates
counted, a header row named. Blank lines are not entries. More than `MAX_BATCH` distinct entries
refuse the whole check (a partial answer to a bidder list would look complete).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from safecredit.api.masking import mask_ids_in_text
from safecredit.api.problems import ApiProblem
from safecredit.api.subjects import MAX_BATCH, MAX_CODE_LENGTH, resolve_subject
from safecredit.codes import normalise_code

#: headers that name the column of codes (compared without spaces, case-insensitive)
CODE_HEADERS = (
    "统一社会信用代码",
    "社会信用代码",
    "信用代码",
    "身份证号码",
    "身份证号",
    "公民身份号码",
    "证件号码",
    "代码",
    "uscc",
    "code",
    "id_number",
)


class InputError(ValueError):
    """The list cannot be checked at all (too many codes, unreadable file): bilingual."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class Malformed:
    line: int  # 1-based line of the pasted text or row of the file
    shown: str  # the entry as given, ID-number-like runs masked
    reason: str  # bilingual


@dataclass
class CodeList:
    codes: list[str] = field(default_factory=list)  # distinct valid codes, as given (not normalised)
    lines: list[int] = field(default_factory=list)  # the line each of `codes` came from
    malformed: list[Malformed] = field(default_factory=list)
    duplicates: int = 0
    header: str | None = None  # the header row taken from a file, when there was one
    source: str = "粘贴 / pasted"


def _rows_of_csv(data: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel on Chinese Windows saves CSV as GBK
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InputError("CSV 文件既不是 UTF-8 也不是 GBK 编码", "the CSV file is neither UTF-8 nor GBK encoded")
    return [row for row in csv.reader(io.StringIO(text))]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():  # a code typed as a number (loses leading zeros; said below)
        return str(int(v))
    return str(v)


def _rows_of_xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — any unreadable workbook gets the same clear answer
        raise InputError("无法读取该 .xlsx 文件", f"the .xlsx file cannot be read ({type(exc).__name__})") from None
    try:
        sheet = wb.worksheets[0]
        return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        wb.close()


def rows_of_upload(filename: str, data: bytes) -> list[list[str]]:
    name = (filename or "").lower()
    if name.endswith(".xlsx"):
        return _rows_of_xlsx(data)
    if name.endswith(".csv") or name.endswith(".txt"):
        return _rows_of_csv(data)
    raise InputError(
        f"不支持的文件类型：{filename[:60]}（请上传 .csv 或 .xlsx）",
        f"unsupported file type: {filename[:60]} (upload a .csv or .xlsx file)",
    )


def _header_key(s: str) -> str:
    return "".join(s.split()).lower()


def pick_column(rows: list[list[str]], column: str | None) -> tuple[int, bool]:
    """(index of the code column, whether the first row is a header). A header named by the user
    must exist; else a known header (统一社会信用代码 …) is looked for; else the first column."""
    first = [_header_key(c) for c in rows[0]] if rows else []
    if column and column.strip():
        wanted = _header_key(column)
        if wanted not in first:
            raise InputError(
                f"文件第一行没有名为“{column.strip()[:40]}”的列",
                f"the file's first row has no column named {column.strip()[:40]!r}",
            )
        return first.index(wanted), True
    for name in CODE_HEADERS:
        if name in first:
            return first.index(name), True
    return 0, False


def collect(entries: list[tuple[int, str]], source: str, header: str | None = None) -> CodeList:
    """Entries (line, text) → distinct valid codes, malformed ones with reasons, duplicates."""
    out = CodeList(source=source, header=header)
    seen: set[str] = set()
    given = [(line, text.strip()) for line, text in entries if text and text.strip()]
    distinct = {normalise_code(text)[: MAX_CODE_LENGTH + 1] for _, text in given}
    if len(distinct) > MAX_BATCH:
        raise InputError(
            f"一次最多核查 {MAX_BATCH} 个代码，本次有 {len(distinct)} 个不同的代码；请分批核查",
            f"at most {MAX_BATCH:,} codes per check; this list has {len(distinct):,} distinct codes: split it",
        )
    for line, text in given:
        key = normalise_code(text)[: MAX_CODE_LENGTH + 1]
        if key in seen:
            out.duplicates += 1
            continue
        seen.add(key)
        try:
            resolve_subject(text, None, lambda: None)  # the form only; persons are hashed later
        except ApiProblem as exc:
            out.malformed.append(Malformed(line, mask_ids_in_text(text[:MAX_CODE_LENGTH]), exc.detail))
            continue
        out.codes.append(text)
        out.lines.append(line)
    return out


def codes_from_form(pasted: str, upload_name: str | None, upload: bytes | None, column: str | None) -> CodeList:
    """The check's list: the uploaded file when one was sent, else the pasted lines."""
    if upload:
        rows = rows_of_upload(upload_name or "", upload)
        if not rows:
            raise InputError("上传的文件是空的", "the uploaded file is empty")
        index, has_header = pick_column(rows, column)
        header = rows[0][index] if has_header and index < len(rows[0]) else None
        body = rows[1:] if has_header else rows
        start = 2 if has_header else 1
        entries = [(start + i, row[index] if index < len(row) else "") for i, row in enumerate(body)]
        return collect(entries, f"文件 / file {upload_name}", header)
    return collect(list(enumerate((pasted or "").splitlines(), start=1)), "粘贴 / pasted")
