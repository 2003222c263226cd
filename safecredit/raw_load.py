"""Landing → `raw.<dataset>`: DuckDB reads the landed files; Python only lists them.

One INSERT per landed fetch (a fetch is one department's answer to one pull), so memory is bounded
by the largest fetch, not the landing, and no Python loop touches a record:

- JSON fetches: the page bodies as received (safecredit.pages: repeats dropped there; a fetch whose
  items are all objects of known keys is read with one parse of each page, `plain_items`), or the
  `items.jsonl` of an earlier release, one item a line, read by `read_json_objects`; each known field's
  JSON value becomes text as departments mean it (a number `2.0` is `"2"`, `true` is `"true"`,
  `""` is absent) and the unknown keys become `extra_fields`, a JSON object sorted by key.
- CSV fetches: the day files read by `read_csv` as text. DuckDB reads only UTF-8 without
  extensions, so a GBK (or BOM-prefixed) day is decoded with Python's codec — a whole file at a
  time — into a UTF-8 copy first.

`seq` is the record's position in its fetch (file order, days in order); in a pages fetch a dropped
repeat leaves a gap (safecredit.pages.load_items).
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

from safecredit.connectors.client import _codec
from safecredit.contracts import ENVELOPE, Contract, _q, load_contract
from safecredit.errors import UserError
from safecredit.landing import MANIFEST, SourceDir
from safecredit.pages import has_pages, load_items, plain_items

# A field as the text a department means, the rules of the Python loader this replaced: `s` is
# json_extract_string's text (strings unescaped, null absent, true/false, objects and arrays as
# compact JSON), and "" is absent too. Only a JSON *number* with a fraction or an exponent needs
# more: Python printed an integral float without ".0" (2.0 → "2"). The pattern keeps the type
# check (a parse of the document) off every other value, and the first character and a '.', 'e'
# or 'E' (both implied by the pattern, tested first: AND stops at the first false) keep the
# pattern off nearly all (names, dates, codes).
_MACROS = (
    r"""CREATE OR REPLACE MACRO sc_json_numeric(s) AS
        (ascii(s) BETWEEN 48 AND 57 OR ascii(s) = 45) AND (contains(s, '.') OR contains(s, 'e') OR contains(s, 'E'))
        AND regexp_full_match(s, '-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?')""",
    r"""CREATE OR REPLACE MACRO sc_json_number(s) AS
        CASE WHEN CAST(s AS DOUBLE) = trunc(CAST(s AS DOUBLE)) AND abs(CAST(s AS DOUBLE)) < 1e38
             THEN CAST(CAST(CAST(s AS DOUBLE) AS HUGEINT) AS VARCHAR)
             ELSE CAST(CAST(s AS DOUBLE) AS VARCHAR) END""",
    r"""CREATE OR REPLACE MACRO sc_json_text(s, doc, path) AS CASE
        WHEN s = '' THEN NULL
        WHEN sc_json_numeric(s) AND json_type(doc, path) = 'DOUBLE' THEN sc_json_number(s)
        ELSE s END""",
    # The same text from a field's JSON text (`f`: a page item's field as json_transform gives it
    # when a fetch holds more than text in that field): a string unescaped (sliced when it holds no
    # escape), a number, true/false or an object as it is. Unquoted, a value that matches the
    # number pattern is a JSON number: sc_json_text's type check is implied.
    r"""CREATE OR REPLACE MACRO sc_json_field(f) AS CASE
        WHEN f IS NULL THEN NULL
        WHEN ascii(f) = 34 THEN nullif(CASE WHEN contains(f, '\') THEN json_extract_string(f, '$') ELSE f[2:-2] END, '')
        WHEN sc_json_numeric(f) THEN sc_json_number(f)
        ELSE f END""",
)


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def raw_columns(contract: Contract) -> list[str]:
    return list(ENVELOPE) + list(contract.codes)


def _create(con: duckdb.DuckDBPyConnection, contract: Contract, table: str) -> None:
    cols = ", ".join(f"{_ident(c)} VARCHAR" for c in raw_columns(contract))
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"CREATE OR REPLACE TABLE {table} (department VARCHAR, fetch_id VARCHAR, "
        f"seq BIGINT, landed_at VARCHAR, {cols}, extra_fields VARCHAR)"
    )


def _json_select(contract: Contract, items: str) -> str:
    """`items` (a query of seq, json) → raw columns (department, fetch_id, landed_at are parameters)."""
    known = raw_columns(contract)
    paths = [_q("$." + json.dumps(c)) for c in known]
    values = ", ".join(f"sc_json_text(v[{i + 1}], j, {p}) AS {_ident(c)}" for i, (c, p) in enumerate(zip(known, paths)))
    known_list = "[" + ", ".join(_q(c) for c in known) + "]"
    # extra_fields as json.dumps(..., sort_keys=True) wrote it: '{"K": value, ...}' or NULL
    extra = (
        "CASE WHEN len(x) > 0 THEN '{' || array_to_string(list_transform(list_sort(x), lambda "
        "k: to_json(k)::VARCHAR || ': ' || json_extract(j, '$.' || to_json(k)::VARCHAR)::VARCHAR), ', ')"
        " || '}' END"
    )
    return (
        f"SELECT $dept, $fid, seq, $landed, {values}, {extra} AS extra_fields FROM ("
        f"SELECT seq, json AS j, json_extract_string(json, [{', '.join(paths)}]) AS v, "
        f"list_filter(json_keys(json), lambda k: NOT list_contains({known_list}, k)) AS x FROM ({items}))"
    )


def _plain_select(contract: Contract, items: str, as_json: list[str]) -> str:
    """`items` (a query of seq, it: pages.plain_items) → raw columns; no item has an unknown key."""
    values = ", ".join(
        f"sc_json_field(CAST(it.{_ident(c)} AS VARCHAR)) AS {_ident(c)}"
        if c in as_json
        else f"nullif(it.{_ident(c)}, '') AS {_ident(c)}"
        for c in raw_columns(contract)
    )
    return f"SELECT $dept, $fid, seq, $landed, {values}, NULL AS extra_fields FROM ({items})"


def _json_fetch_select(con, contract: Contract, fetch: Path, manifest: dict) -> str:
    """A JSON fetch's raw rows: its pages read with one parse each where they allow (plain_items)."""
    until = (manifest.get("params") or {}).get("until")
    if has_pages(fetch):
        plain = plain_items(con, fetch, raw_columns(contract), until)
        if plain is not None:
            return _plain_select(contract, *plain)
    return _json_select(contract, _json_items(con, fetch, manifest))


def _json_items(con, fetch: Path, manifest: dict) -> str:
    """(seq, json) of a JSON fetch: its pages, or the items.jsonl an earlier release landed."""
    if has_pages(fetch):
        return load_items(con, fetch, (manifest.get("params") or {}).get("until"))
    return (
        f"SELECT ordinality - 1 AS seq, json FROM read_json_objects("
        f"{_q(str(fetch / 'items.jsonl'))}, format = 'newline_delimited') WITH ORDINALITY"
    )


def _csv_select(contract: Contract, headers: dict[Path, list[str]]) -> str:
    """Day files (UTF-8, header row of field codes) → raw columns; unknown columns → extra_fields."""
    known = raw_columns(contract)
    columns = {c for h in headers.values() for c in h}
    values = ", ".join(
        (f"nullif({_ident(c)}, '')" if c in columns else "NULL::VARCHAR") + f" AS {_ident(c)}" for c in known
    )
    # as the CSV loader wrote it: every unknown column of the row's own file, an empty one as ""
    by_extra: dict[tuple[str, ...], list[str]] = {}
    for f, header in headers.items():
        by_extra.setdefault(tuple(sorted(set(header) - set(known))), []).append(_q(str(f)))
    cases = []
    for extra, files in sorted(by_extra.items()):
        if extra:
            cases.append(f"WHEN filename IN ({', '.join(files)}) THEN {_extra_object(extra)}")
    extra_sql = f"CASE {' '.join(cases)} END" if cases else "NULL::VARCHAR"
    file_list = "[" + ", ".join(_q(str(f)) for f in headers) + "]"
    return (
        f"SELECT $dept, $fid, ordinality - 1, $landed, {values}, {extra_sql} AS extra_fields "
        f"FROM read_csv({file_list}, header = true, all_varchar = true, union_by_name = true, filename = true, "
        # null_padding: a short row reads as absent fields, as csv.DictReader did; with quoted
        # newlines in free text DuckDB allows it only in its serial reader
        f"delim = ',', quote = '\"', escape = '\"', null_padding = true, parallel = false) WITH ORDINALITY"
    )


def _extra_object(columns: Iterable[str]) -> str:
    """SQL of a CSV row's unknown columns as `extra_fields`, as the CSV loader wrote it: a JSON
    object of every one (sorted by the caller), an empty cell as ""."""
    pairs = ", ".join(
        f"{_q(json.dumps(c, ensure_ascii=False) + ': ')} || to_json(coalesce({_ident(c)}, ''))::VARCHAR"
        for c in columns
    )
    return f"'{{' || concat_ws(', ', {pairs}) || '}}'"


def _utf8(data: bytes, charset: str) -> bytes:
    """A day file's bytes as DuckDB reads them: the file itself when it is UTF-8 without a BOM,
    else decoded with its codec (a whole file at a time) and encoded as UTF-8."""
    codec = _codec(charset)
    if codec == "utf-8-sig" and not data.startswith(b"\xef\xbb\xbf"):
        return data
    return data.decode(codec).encode("utf-8")


def _csv_header(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh), [])


def _utf8_day(path: Path, charset: str, tmp: Path) -> Path:
    """The day file itself when DuckDB can read it as is, else a UTF-8 copy (whole-file decode)."""
    data = path.read_bytes()
    text = _utf8(data, charset)
    if text is data:
        return path
    out = tmp / f"{path.parent.parent.name}-{path.name}"
    out.write_bytes(text)
    return out


def _insert_fetch(con, contract: Contract, fetch: Path, manifest: dict, params: dict, tmp: Path, table: str) -> None:
    if manifest["transport"] == "json":
        con.execute(f"INSERT INTO {table} {_json_fetch_select(con, contract, fetch, manifest)}", params)
        return
    days = [d for d in manifest.get("days", []) if d["rows"]]
    if not days:
        return
    if _insert_csv_segments(con, contract, fetch, days, params, tmp, table):
        return
    files = [_utf8_day(fetch / "days" / f"{d['date']}.csv", d["charset"], tmp) for d in days]
    con.execute(f"INSERT INTO {table} {_csv_select(contract, {f: _csv_header(f) for f in files})}", params)


def _insert_csv_segments(con, contract, fetch: Path, days: list[dict], params: dict, tmp: Path, table: str) -> bool:
    """The day files of a fetch read as a few files instead of one per day: DuckDB's CSV reader
    pays about a millisecond and a half per file, and a history is one small file per day (2,832
    files, 17k records: 6.6 CPU s file by file, 0.3 s this way). Consecutive days with the same
    header are joined into one UTF-8 file (the header once, each day's rows after it: bytes, not
    rows, pass through Python) and read with that header's columns, no sniffing.

    It must read exactly what the day files hold: when the records read differ from the rows the
    landing counted per day (a quote left open at a day's end would swallow the next day), or
    DuckDB refuses a joined file, the fetch's rows are removed again and False says: read the days
    one by one, as before (the same records, the same errors)."""
    segments = _day_segments(fetch, days, tmp)
    if segments is None:
        return False
    seq = 0
    where, key = "department = $dept AND fetch_id = $fid", {"dept": params["dept"], "fid": params["fid"]}
    try:
        for path, header in segments:
            sql = f"INSERT INTO {table} {_segment_select(contract, path, header)}"
            seq += con.execute(sql, {**params, "base": seq}).fetchall()[0][0]  # the rows it inserted
    except duckdb.Error:
        seq = -1
    if seq != sum(d["rows"] for d in days):
        con.execute(f"DELETE FROM {table} WHERE {where}", key)
        return False
    return True


def _day_segments(fetch: Path, days: list[dict], tmp: Path) -> list[tuple[Path, list[str]]] | None:
    """[(joined UTF-8 file, header)] for runs of consecutive days with the same header; None when a
    header cannot name explicit columns (an empty or repeated name)."""
    segments: list[tuple[Path, list[str]]] = []
    out = None
    for d in days:
        data = _utf8((fetch / "days" / f"{d['date']}.csv").read_bytes(), d["charset"])
        first, _, body = data.partition(b"\n")
        header = next(csv.reader([first.decode("utf-8").rstrip("\r")]), [])
        if not header or "" in header or len(set(header)) != len(header):
            if out is not None:
                out.close()
            return None
        if not segments or segments[-1][1] != header:
            if out is not None:
                out.close()
            path = tmp / f"{fetch.name}-{len(segments):04d}.csv"
            segments.append((path, header))
            out = open(path, "wb")  # noqa: SIM115 - closed when the next segment starts or below
            out.write(first + b"\n")
        if body:
            out.write(body if body.endswith(b"\n") else body + b"\n")
    if out is not None:
        out.close()
    return segments


def _segment_select(contract: Contract, path: Path, header: list[str]) -> str:
    """A joined day file → raw columns; the header's unknown columns → extra_fields (as `_csv_select`)."""
    known = raw_columns(contract)
    values = ", ".join(
        (f"nullif({_ident(c)}, '')" if c in header else "NULL::VARCHAR") + f" AS {_ident(c)}" for c in known
    )
    extra = sorted(set(header) - set(known))
    extra_sql = _extra_object(extra) if extra else "NULL::VARCHAR"
    columns = "{" + ", ".join(f"{_q(c)}: 'VARCHAR'" for c in header) + "}"
    return (
        f"SELECT $dept, $fid, $base + ordinality - 1, $landed, {values}, {extra_sql} AS extra_fields "
        f"FROM read_csv({_q(str(path))}, header = true, columns = {columns}, auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', null_padding = true, parallel = false) WITH ORDINALITY"
    )


def load_raw(con: duckdb.DuckDBPyConnection, raw_root: Path, departments: Iterable[str], dataset: str) -> int:
    """Rebuild `raw.<dataset>` from every complete fetch, in (department, fetch_id, seq) order."""
    fetches = [(dept, f) for dept in sorted(departments) for f in SourceDir(raw_root, dept, dataset).fetches()]
    return load_fetches(con, fetches, dataset, f"raw.{dataset}")


def load_fetches(con: duckdb.DuckDBPyConnection, fetches: Iterable[tuple[str, Path]], dataset: str, table: str) -> int:
    """(Re)create `table` with the records of the given (department, fetch directory) pairs, in order."""
    contract = load_contract(dataset)
    for macro in _MACROS:
        con.execute(macro)
    _create(con, contract, table)
    with tempfile.TemporaryDirectory(prefix="sc-raw-") as tmp:
        for dept, fetch in fetches:
            manifest = json.loads((fetch / MANIFEST).read_text(encoding="utf-8"))
            params = {"dept": dept, "fid": fetch.name, "landed": manifest.get("finished_at")}
            try:
                _insert_fetch(con, contract, fetch, manifest, params, Path(tmp), table)
            except (duckdb.Error, UnicodeDecodeError) as exc:
                raise UserError(
                    f"无法读取部门 {dept} 的 {dataset} 落地批次 {fetch.name}：{exc}",
                    f"cannot read the landed {dataset} fetch {fetch.name} of department {dept}: {exc}",
                ) from exc
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
