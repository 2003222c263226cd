"""The DuckDB warehouse: one writer at a time, offline, with the project's SQL macros."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from safecredit.codes import ID_CHECK_MAP, ID_WEIGHTS, USCC_ALPHABET, USCC_WEIGHTS
from safecredit.config import Paths
from safecredit.errors import WarehouseBusy

# check sums unrolled (no lambdas: DuckDB inlines a macro's argument into each lambda call)
_USCC_SUM = " + ".join(
    f"(instr('{USCC_ALPHABET}', substr(s, {i + 1}, 1)) - 1) * {w}" for i, w in enumerate(USCC_WEIGHTS)
)
_ID_SUM = " + ".join(f"TRY_CAST(substr(s, {i + 1}, 1) AS INTEGER) * {w}" for i, w in enumerate(ID_WEIGHTS))
_FULL = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_HALF_SQL = _HALF.replace("'", "''")

# Normalisation and code checks shared by contracts and rules. Kept in SQL so validation runs as
# set logic in DuckDB, not as a Python loop over rows.
MACROS = f"""
-- translate only strings that hold a full-width character: the check is 13x cheaper than translate,
-- and translate (≈ 3 µs a call) only those left once the punctuation of Chinese prose is replaced
-- (，（）：； — what most free text holds): the same mapping at half the cost on 事由 texts.
-- A value used twice is bound once through a one-element list (`[x]` + lambda): DuckDB shares a
-- repeated expression only outside CASE branches, and inside one (the fast paths below) it would
-- be computed twice or three times.
CREATE OR REPLACE MACRO sc_half(s) AS CASE WHEN regexp_matches(s, '[\uff01-\uff5e\u3000]')
    THEN list_transform(
        [replace(replace(replace(replace(replace(s, '，', ','), '（', '('), '）', ')'), '：', ':'), '；', ';')],
        lambda r: CASE WHEN regexp_matches(r, '[\uff01-\uff5e\u3000]')
                       THEN translate(r, '{_FULL}', '{_HALF_SQL}') ELSE r END)[1]
    ELSE s END;
-- most values (names, codes, dates) hold neither a full-width character nor whitespace (nor, for a
-- code, a comma): they are returned as they are after one scan, 3x cheaper than normalising them
CREATE OR REPLACE MACRO sc_text(s) AS CASE WHEN regexp_matches(s::VARCHAR, '[\uff01-\uff5e\u3000\\s]')
    THEN list_filter([trim(regexp_replace(sc_half(s::VARCHAR), '\\s+', ' ', 'g'))], lambda v: v <> '')[1]
    ELSE nullif(s::VARCHAR, '') END;
CREATE OR REPLACE MACRO sc_code(s) AS CASE WHEN regexp_matches(s::VARCHAR, '[\uff01-\uff5e\u3000\\s,]')
    THEN list_filter([upper(regexp_replace(sc_half(s::VARCHAR), '[\\s,]', '', 'g'))], lambda v: v <> '')[1]
    ELSE nullif(upper(s::VARCHAR), '') END;
CREATE OR REPLACE MACRO sc_date(s) AS try_strptime(sc_code(s),
    ['%Y-%m-%d', '%Y/%m/%d', '%Y%m%d', '%Y年%m月%d日', '%Y.%m.%d'])::DATE;
CREATE OR REPLACE MACRO sc_datetime(s) AS coalesce(
    try_strptime(replace(left(sc_text(s), 19), 'T', ' '), ['%Y-%m-%d %H:%M:%S', '%Y/%m/%d %H:%M:%S', '%Y-%m-%d %H:%M']),
    sc_date(regexp_extract(sc_text(s), '^([^ T]+)', 1))
        + TRY_CAST(nullif(regexp_extract(sc_text(s), '[ T]([0-9]{{1,2}}:[0-9]{{2}}(:[0-9]{{2}})?)', 1), '') AS TIME),
    sc_date(s)::TIMESTAMP);
CREATE OR REPLACE MACRO sc_uscc_ok(s) AS coalesce(length(s) = 18
    AND regexp_full_match(s, '[0-9A-HJ-NPQRTUWXY]{{18}}')
    AND substr('{USCC_ALPHABET}', ((31 - ({_USCC_SUM}) % 31) % 31)::BIGINT + 1, 1) = substr(s, 18, 1), false);
CREATE OR REPLACE MACRO sc_id_ok(s) AS coalesce(regexp_full_match(s, '[0-9]{{17}}[0-9X]')
    AND try_strptime(substr(s, 7, 8), '%Y%m%d') IS NOT NULL
    AND substr(s, 7, 8) >= '19000101'
    AND substr('{ID_CHECK_MAP}', (({_ID_SUM}) % 11)::BIGINT + 1, 1) = substr(s, 18, 1), false);
CREATE OR REPLACE MACRO sc_mask(s) AS CASE WHEN s IS NULL THEN NULL WHEN length(s) <= 4 THEN s
    ELSE repeat('*', length(s) - 4) || right(s, 4) END;
"""
# which definitions a warehouse file holds: creating a persistent macro writes the catalog (and a
# checkpoint at close), ≈ 70 ms per writer connection, 17 of them on a night with nothing new
MACROS_DIGEST = hashlib.sha256(MACROS.encode()).hexdigest()[:16]
MACROS += f"CREATE OR REPLACE MACRO sc_macros_digest() AS '{MACROS_DIGEST}';\n"


# every DuckDB file starts with three 4 KiB header blocks: a shorter file is a creation cut short
_HEADER_BYTES = 3 * 4096
_OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def connect(path: Path | str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse. Offline machines: never install or auto-load extensions."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not read_only:
            _drop_unborn(Path(path))
    con = duckdb.connect(str(path), read_only=read_only, config=_OFFLINE)
    con.execute("SET TimeZone = 'Asia/Shanghai'") if _has_icu(con) else None
    if read_only:
        con.execute(MACROS.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO"))
    elif _macros_digest(con) != MACROS_DIGEST:
        con.execute(MACROS)
    return con


def _macros_digest(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        # fetchall, not fetchone: a result left unfinished makes the relation API (`con.sql`)
        # refuse the connection in DuckDB 2.0
        return con.execute("SELECT sc_macros_digest()").fetchall()[0][0]
    except duckdb.Error:  # a new file, or one written before the digest existed
        return None


def _drop_unborn(path: Path) -> None:
    """A process killed while DuckDB created the file leaves a few bytes that no DuckDB opens; no
    data was ever in it (no WAL either), so the next writer starts the warehouse afresh."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    wal = path.with_name(path.name + ".wal")
    if size < _HEADER_BYTES and not wal.exists():
        path.unlink()


def _has_icu(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        return bool(
            con.execute("SELECT count(*) FROM duckdb_extensions() WHERE extension_name = 'icu' AND loaded").fetchall()[
                0
            ][0]
        )
    except duckdb.Error:
        return False


_HELD: dict[str, list] = {}  # lock path -> [fd, depth]: re-entrant within one process


@contextmanager
def writer_lock(paths: Paths, holder: str = "", wait: float = 0.0) -> Iterator[None]:
    """Exclusive lock shared by the CLI, schedules, sensors and backfills: one writer at a time.

    Re-entrant inside one process (the CLI holds it for a whole run while each asset takes it
    again); another process gets `WarehouseBusy` (exit 3) at once instead of waiting.
    """
    key = str(paths.lock)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    paths.warehouse_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:  # steps of one run queue here; the CLI asks with wait=0
                time.sleep(0.2)
                continue
        os.close(fd)
        other = Path(paths.lock).read_text(encoding="utf-8", errors="replace").strip()
        raise WarehouseBusy(
            f"另一个运行正在写入数据仓库（{other or '未知'}），请等待其结束后再试。",
            f"Another run holds the warehouse ({other or 'unknown holder'}); wait for it to finish and retry.",
        ) from None
    _HELD[key] = [fd, 1]
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} {holder}".encode(), 0)
        yield
    finally:
        del _HELD[key]
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@contextmanager
def open_reader(paths: Paths) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for commands that only look (explain …)."""
    from safecredit.errors import NothingPublished

    if not paths.warehouse.exists():
        raise NothingPublished(
            f"{paths.warehouse} 不存在：尚未运行过。请先运行 `safecredit run`。",
            f"No warehouse at {paths.warehouse}: nothing has run yet. Run `safecredit run` first.",
        )
    try:
        con = connect(paths.warehouse, read_only=True)
    except duckdb.IOException:
        raise WarehouseBusy(
            "数据仓库正被运行中的任务写入，请稍后再试。",
            "The warehouse is being written by a running job; try again when it finishes.",
        ) from None
    try:
        yield con
    finally:
        con.close()
