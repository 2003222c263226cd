"""No person ID number in a log line, an audit row or an answer (exchange.md §2).

An ID number reaches a log in many disguises: `110101 19900307 4578`, `110101-19900307-4578`,
full-width digits, `%31%31…` (percent-encoded, once or twice), a lower-case `x`. Masking therefore
works on a normalised view of the text — percent-encoding decoded, NFKC (full-width → half-width),
separators skipped — and masks, in the original text, every span whose normalised characters form
an ID-like run:

- a chain of exactly 18 characters `\\d{17}[\\dX]` (any check digit: a mistyped number is still a
  person's), unless it is a valid USCC and no valid ID number (a unit's code is not personal data);
- inside a longer chain, every 18-character window that is a valid ID number.

A masked span becomes `**************` + its last 4 characters. Over-masking a number that only
looks like an ID number is the accepted price.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from urllib.parse import unquote

from safecredit.codes import is_valid_id_number, is_valid_uscc, mask_id_number

#: separators people and programs put inside ID numbers (after NFKC: full-width forms are these)
_SEPARATORS = frozenset(" \t\r\n\f\v-_.+\u00a0\u2010\u2011\u2012\u2013\u2014\u2212\u3000")
_DIGIT = re.compile(r"\d")  # unicode digits: full-width ones count too
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_ID_FORM = re.compile(r"\d{17}[\dX]")

#: what a log line shows of a request path at most: a 65 KB URL is an attack, not a record
MAX_LOGGED_PATH = 512


def _units(text: str) -> list[tuple[int, int, str]]:
    """(start, end, char) per character of `text` after percent-decoding (UTF-8 sequences decode
    to one character; undecodable bytes stay as they were)."""
    out: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "%" and _PCT.match(text, i):
            j, raw = i, bytearray()
            while j < n and _PCT.match(text, j) and len(raw) < 4:
                raw.append(int(text[j + 1 : j + 3], 16))
                j += 3
                try:
                    ch = raw.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                out.append((i, j, ch))
                i = j
                break
            else:
                out.append((i, i + 1, "%"))
                i += 1
            continue
        out.append((i, i + 1, text[i]))
        i += 1
    return out


def _redecode(units: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """One more round of percent-decoding over already decoded units (`%2531` is `%31` is `1`)."""
    text = "".join(u[2] for u in units)
    if "%" not in text or len(text) != len(units):
        return units
    out = []
    for s, e, ch in _units(text):
        out.append((units[s][0], units[e - 1][1], ch))
    return out


def _id_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, masked) for every ID-like run in `text` (original positions)."""
    units = _redecode(_units(text))
    spans: list[tuple[int, int, str]] = []
    chain: list[tuple[int, int, str]] = []  # (start, end, normalised char) of digits/X

    def close() -> None:
        if len(chain) >= 18:
            spans.extend(_mask_chain(chain))
        chain.clear()

    for s, e, ch in units:
        c = unicodedata.normalize("NFKC", ch)
        if len(c) == 1 and ("0" <= c <= "9" or c in "Xx"):
            chain.append((s, e, c.upper()))
        elif c in _SEPARATORS and chain:
            continue
        else:
            close()
    close()
    return spans


def _mask_chain(chain: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    code = "".join(c for _, _, c in chain)
    if len(code) == 18:
        if _ID_FORM.fullmatch(code) and (is_valid_id_number(code) or not is_valid_uscc(code)):
            return [(chain[0][0], chain[-1][1], mask_id_number(code) or "")]
        return []
    out, i = [], 0
    while i + 18 <= len(code):
        window = code[i : i + 18]
        if is_valid_id_number(window):
            out.append((chain[i][0], chain[i + 17][1], mask_id_number(window) or ""))
            i += 18
        else:
            i += 1
    return out


def mask_ids_in_text(text: str) -> str:
    """`text` with every ID-like run masked but its last 4 characters (see the module docstring)."""
    if len(_DIGIT.findall(text)) < 17:  # fast path: too few digits for an ID number in any form
        return text
    spans = _id_spans(text)
    if not spans:
        return text
    parts, last = [], 0
    for s, e, masked in spans:
        parts.append(text[last:s])
        parts.append(masked)
        last = e
    parts.append(text[last:])
    return "".join(parts)


def _printable(text: str) -> str:
    """Control characters escaped: a `\\n` in a path must not start a forged log line."""
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def mask_path(path: str, query: str = "") -> str:
    """A request path (and query) as a log line or the audit shows it: a restrictions code kept only
    when it is a valid USCC, ID numbers masked, control characters escaped, at most
    MAX_LOGGED_PATH characters."""
    from .subjects import masked_code

    parts = path.split("/")
    if len(parts) >= 4 and parts[:3] == ["", "v1", "restrictions"] and parts[3] not in ("lookup", "batch"):
        # the code is decided by `masked_code` (a valid USCC kept, anything else masked): scanning it
        # again character by character was most of a hot request's masking. An ID-like run cannot
        # cross a `/`, so masking the parts around it alone is the same.
        rest = mask_ids_in_text("/".join(parts[4:])) if len(parts) > 4 else None
        out = "/v1/restrictions/" + (masked_code(unquote(parts[3])) or "-") + ("" if rest is None else "/" + rest)
    else:
        out = mask_ids_in_text(path)
    if query:
        out += "?" + mask_ids_in_text(query)
    out = _printable(out)
    if len(out) > MAX_LOGGED_PATH:
        out = out[:MAX_LOGGED_PATH] + f"…(+{len(out) - MAX_LOGGED_PATH})"
    return out


#: a log record's attribute (`extra={MASKED: True}`): every part of its message was masked when it
#: was made (the access log line), so `MaskIdNumbers` does not scan it a second time
MASKED = "safecredit_masked"


class MaskIdNumbers(logging.Filter):
    """Logging filter: no log line carries a full ID number, whatever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, MASKED, False):
            return True
        msg = record.getMessage()
        masked = mask_ids_in_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True
