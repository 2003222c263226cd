"""The simulator's data: generated parquet loaded into DuckDB, history faults added as versions,
pages answered with keyset queries, data and schema faults applied to the rows served."""

from __future__ import annotations

import json
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from . import data_faults as DF
from . import faults as F

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
ENVELOPE = ["record_id", "updated_at", "op"]
_BIG_ROWS = 200_000  # more rows than this: a temporary DuckDB file, not memory
_TZ_FORMATS = "['%Y-%m-%dT%H:%M:%S%z', '%Y-%m-%dT%H:%M:%S.%f%z', '%Y-%m-%d %H:%M:%S%z']"
_LOCAL_FORMATS = "['%Y-%m-%dT%H:%M:%S', '%Y-%m-%dT%H:%M:%S.%f', '%Y-%m-%d %H:%M:%S']"


def to_local(dt: datetime) -> datetime:
    """Naive Asia/Shanghai wall time of ``dt`` (naive input is taken as Shanghai already)."""
    return dt if dt.tzinfo is None else dt.astimezone(SHANGHAI).replace(tzinfo=None)


def rfc3339(local: datetime) -> str:
    return local.replace(microsecond=0).isoformat() + "+08:00"


@dataclass
class Table:
    dept: str
    dataset: str
    name: str  # DuckDB table
    fields: list[str]  # business fields, in the department's column order


def _ident(*parts: str) -> str:
    return "_".join(re.sub(r"\W", "_", p) for p in parts)


class Store:
    def __init__(self, data_dir: Path, meta: dict, departments: list[str], seed: int, cfg: F.FaultConfig):
        self.data_dir = Path(data_dir)
        self.meta = meta
        self.seed = int(seed)
        self.cfg = cfg
        self.end = datetime.fromisoformat(str(meta["end"])[:10]).replace(hour=23, minute=59, second=59)
        self.start = date.fromisoformat(str(meta["start"])[:10])
        self.dept_meta = {d["id"]: d for d in meta["departments"]}
        self.tables: dict[tuple[str, str], Table] = {}
        self._history: dict[tuple[str, str], list[tuple[datetime, dict]]] = {}
        self._registry: dict[str, tuple[str, str, str]] | None = None
        self._lock = threading.Lock()
        self._tmpdir = None
        files = [f for d in departments for ds in self.dept_meta[d]["datasets"] for f in self._files(d, ds)]
        rows = 0
        if files:
            with duckdb.connect(config={"autoload_known_extensions": False}) as probe:
                rows = probe.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({files!r})").fetchone()[0] or 0
        db = ":memory:"
        if rows > _BIG_ROWS:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="safecredit-sim-")
            db = str(Path(self._tmpdir.name) / "sim.duckdb")
        self.con = duckdb.connect(db)
        self.con.execute(
            "SET autoinstall_known_extensions=false; SET autoload_known_extensions=false; SET TimeZone='UTC'"
        )
        if rows > _BIG_ROWS:
            self.con.execute("SET memory_limit='1GB'")
        for dept in departments:
            for ds in self.dept_meta[dept]["datasets"]:
                self._load(dept, ds)
        for t in self.tables.values():
            if t.dataset == "penalties":
                self._duplicates(t)
        for t in self.tables.values():
            self._corrections(t)
            self._revocations(t)
        for t in self.tables.values():
            self._finish(t)

    def close(self):
        self.con.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    # ------------------------------------------------------------ building

    def _files(self, dept: str, ds: str) -> list[str]:
        return sorted(str(p) for p in (self.data_dir / dept / ds).glob("part-*.parquet"))

    def _raw_select(self, dept: str, ds: str) -> tuple[str, list[str]]:
        """SQL selecting (ts, record_id, op, fields...) from the parquet of (dept, ds), and the fields."""
        files = self._files(dept, ds)
        if not files:  # no data at all: an empty table with the dataset's fields
            from safecredit.generator import DATASET_FIELDS

            fields = list(DATASET_FIELDS.get(ds, []))
            cols = "".join(f', NULL::VARCHAR AS "{c}"' for c in fields)
            return (
                f"SELECT NULL::TIMESTAMP AS ts, NULL::VARCHAR AS record_id, NULL::VARCHAR AS op{cols} WHERE false",
                fields,
            )
        src = f"read_parquet({files!r}, union_by_name = true)"
        cols = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        fields = [c for c in cols if c not in ENVELOPE]
        u = "replace(updated_at, 'Z', '+00:00')"
        ts = (
            f"date_trunc('second', coalesce(try_strptime({u}, {_TZ_FORMATS})::TIMESTAMP + INTERVAL 8 HOUR, "
            f"try_strptime({u}, {_LOCAL_FORMATS})))"
        )
        op = "coalesce(nullif(op, ''), 'upsert')" if "op" in cols else "'upsert'"
        select = ", ".join(f'"{c}"::VARCHAR AS "{c}"' for c in fields)
        return (
            f"SELECT {ts} AS ts, record_id::VARCHAR AS record_id, {op} AS op"
            f"{', ' + select if select else ''} FROM {src}"
        ), fields

    def _load(self, dept: str, ds: str):
        name = _ident("t", dept, ds)
        sql, fields = self._raw_select(dept, ds)
        self.con.execute(f"CREATE TABLE {name} AS {sql}")
        bad = self.con.execute(f"SELECT count(*) FROM {name} WHERE ts IS NULL").fetchone()[0]
        if bad:
            raise ValueError(f"{dept}/{ds}: {bad} records with an unreadable updated_at")
        t = self.tables[(dept, ds)] = Table(dept, ds, name, fields)
        self._history[(dept, ds)] = []
        rate = self.cfg.rate("late_records", dept, ds)
        if rate <= 0:
            return
        rows = self.con.execute(
            f"SELECT record_id, ts FROM {name} WHERE {F.sql_unit(self.seed, 'late_records', 'record_id')} < ? "
            f"AND ts + INTERVAL 60 DAY <= ?",
            [rate, self.end],
        ).fetchall()
        moved = []
        for rid, ts in rows:
            new = self._later(ts, 60, 180, F.hv(self.seed, "late_records", "days", rid))
            moved.append({"record_id": rid, "new_ts": new})
            self._record(t, new, rid, "late_records", "updated_at", rfc3339(ts), rfc3339(new))
        if moved:
            self.con.register("_moved", pa.Table.from_pylist(moved))
            self.con.execute(f"UPDATE {name} SET ts = m.new_ts FROM _moved m WHERE {name}.record_id = m.record_id")
            self.con.unregister("_moved")

    def _later(self, ts: datetime, lo: int, span: int, h: int) -> datetime:
        """``ts`` plus lo..lo+span-1 whole days (by ``h``), never past the end of the data; the
        callers select only versions with at least ``lo`` days left."""
        room = (self.end - ts).days - lo + 1
        return ts + timedelta(days=lo + h % max(1, min(span, room)))

    def _record(self, t: Table, ts: datetime, rid: str, fault: str, field: str, original, served):
        self._history[(t.dept, t.dataset)].append(
            (ts, {"record_id": rid, "fault": fault, "field": field, "original": original, "served": served})
        )

    def _insert(self, t: Table, rows: list[dict]):
        if not rows:
            return
        schema = pa.schema(
            [("ts", pa.timestamp("us")), ("record_id", pa.string()), ("op", pa.string())]
            + [(f, pa.string()) for f in t.fields]
        )
        self.con.register("_new", pa.Table.from_pylist(rows, schema=schema))
        self.con.execute(f"INSERT INTO {t.name} BY NAME SELECT * FROM _new")
        self.con.unregister("_new")

    def _fetch_dicts(self, sql: str, params=()) -> list[dict]:
        cur = self.con.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def _duplicates(self, t: Table):
        rate = self.cfg.rate("duplicates", t.dept, t.dataset)
        source = (
            "yjj"
            if "penalties" in self.dept_meta.get("yjj", {}).get("datasets", [])
            else next((d["id"] for d in self.meta["departments"] if "penalties" in d["datasets"]), None)
        )
        if rate <= 0 or source is None or source == t.dept:
            return
        sample = self._fetch_dicts(f"SELECT * FROM {t.name} ORDER BY ts, record_id LIMIT 1")
        reporter = {k: sample[0].get(k) for k in ("CF_SJLY", "CF_SJLYDM")} if sample else {}
        sql, _ = self._raw_select(source, "penalties")
        key = f"'{t.dept}|' || record_id"
        src_rows = self._fetch_dicts(
            f"SELECT * FROM ({sql}) WHERE {F.sql_unit(self.seed, 'duplicates', key)} < ? "
            f"AND ts + INTERVAL 11 DAY <= ? ORDER BY ts, record_id",
            [rate, self.end],
        )
        new_rows = []
        for src in src_rows:
            h = F.hv(self.seed, "duplicates", t.dept, src["record_id"])
            rid = f"{t.dept}-dup-{h:08x}"
            row = {f: src.get(f) for f in t.fields}
            row.update({k: v for k, v in reporter.items() if k in t.fields and v})
            ts = src["ts"] + timedelta(days=1 + h % 10, seconds=h % 3600)
            row.update(ts=ts, record_id=rid, op="upsert")
            new_rows.append(row)
            self._record(t, ts, rid, "duplicates", "record_id", f"{source}/{src['record_id']}", rid)
        self._insert(t, new_rows)

    def _corrections(self, t: Table):
        rate = self.cfg.rate("corrections", t.dept, t.dataset)
        if rate <= 0:
            return
        rows = self._fetch_dicts(
            f"SELECT * FROM {t.name} WHERE op = 'upsert' AND {F.sql_unit(self.seed, 'corrections', 'record_id')} < ? "
            f"AND ts + INTERVAL 3 DAY <= ? ORDER BY ts, record_id",
            [rate, self.end],
        )
        new_rows = []
        for row in rows:
            h = F.hv(self.seed, "corrections", "days", row["record_id"])
            change = DF.corrected_value(t.dataset, row, h)
            if change is None:
                continue
            f, value = change
            new = dict(row, ts=self._later(row["ts"], 3, 40, h))
            new[f] = value
            new_rows.append(new)
            self._record(t, new["ts"], row["record_id"], "corrections", f, row[f] or "", value)
        self._insert(t, new_rows)

    def _revocations(self, t: Table):
        rate = self.cfg.rate("revocations", t.dept, t.dataset)
        if rate <= 0:
            return
        rows = self.con.execute(
            f"SELECT record_id, max(ts) AS ts FROM {t.name} GROUP BY record_id "
            f"HAVING {F.sql_unit(self.seed, 'revocations', 'record_id')} < ? AND max(ts) + INTERVAL 1 DAY <= ? "
            f"ORDER BY ts, record_id",
            [rate, self.end],
        ).fetchall()
        new_rows = []
        for rid, ts in rows:
            new_rows.append(
                {
                    "ts": self._later(ts, 1, 120, F.hv(self.seed, "revocations", "days", rid)),
                    "record_id": rid,
                    "op": "revoke",
                }
            )
            self._record(t, new_rows[-1]["ts"], rid, "revocations", "op", "upsert", "revoke")
        self._insert(t, new_rows)

    def data_faults(self, t: Table) -> list[str]:
        return [
            n
            for n in F.DATA_FAULTS
            if self.cfg.rate(n, t.dept, t.dataset) > 0
            and (DF.DATA_FAULT_DATASETS[n] is None or t.dataset in DF.DATA_FAULT_DATASETS[n])
        ]

    def _finish(self, t: Table):
        masks = [
            f"CASE WHEN op = 'upsert' AND {F.sql_unit(self.seed, n, 'record_id')} < "
            f"{self.cfg.rate(n, t.dept, t.dataset)!r} THEN {1 << F.DATA_FAULTS.index(n)} ELSE 0 END"
            for n in self.data_faults(t)
        ]
        cols = ", ".join(f'"{c}"' for c in t.fields)
        final = _ident("v", t.dept, t.dataset)
        # `pos`: the row's place in (ts, record_id) order, stored in that order, so a page after a
        # cursor is a range of positions its zone maps find, not a sort of everything after it
        self.con.execute(
            f"CREATE TABLE {final} AS SELECT ts, strftime(ts, '%Y-%m-%dT%H:%M:%S') || '+08:00' AS updated_at, "
            f"record_id, op{', ' + cols if cols else ''}, ({' + '.join(masks) or '0'})::INTEGER AS fmask, "
            f"row_number() OVER (ORDER BY ts, record_id) AS pos FROM {t.name} ORDER BY pos"
        )
        self.con.execute(f"DROP TABLE {t.name}")
        t.name = final
        self._history[(t.dept, t.dataset)].sort(key=lambda e: (e[0], e[1]["record_id"]))

    # ------------------------------------------------------------ queries

    def _select(self, t: Table, extra: str = "") -> str:
        cols = "".join(f', "{c}"' for c in t.fields)
        return f"SELECT ts, updated_at, record_id, op{cols}, fmask{extra} FROM {t.name}"

    def _fast(self, t: Table, now: datetime, since: datetime | None, after, pos: int | None) -> bool:
        """Whether a cursor's position can stand for its key: it names the row it was made from,
        and that row is within `since`..`now` (then what follows it is a range of positions)."""
        if after is None or pos is None or after[0] > now or (since is not None and after[0] < since):
            return False
        with self.con.cursor() as cur:
            return cur.execute(f"SELECT ts, record_id FROM {t.name} WHERE pos = ?", [int(pos)]).fetchone() == after

    def page(
        self,
        t: Table,
        now: datetime,
        since: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
        pos: int | None = None,
    ) -> tuple[list[tuple], int | None]:
        """Up to `limit` visible versions after `after` (position `pos`, when the cursor has it),
        in (ts, record_id) order, and the position of the last one."""
        if self._fast(t, now, since, after, pos):
            sql = f"{self._select(t, ', pos')} WHERE pos > ? AND pos <= ? AND ts <= ? ORDER BY pos"
            params = [int(pos), int(pos) + int(limit), now]
        else:
            where, params = ["ts <= ?"], [now]
            if since is not None:
                where.append("ts >= ?")
                params.append(since)
            if after is not None:
                where.append("ts >= ? AND (ts > ? OR record_id > ?)")
                params += [after[0], after[0], after[1]]
            sql = f"{self._select(t, ', pos')} WHERE {' AND '.join(where)} ORDER BY ts, record_id LIMIT {int(limit)}"
        with self.con.cursor() as cur:
            rows = cur.execute(sql, params).fetchall()
        return [r[:-1] for r in rows], (rows[-1][-1] if rows else None)

    def before(
        self,
        t: Table,
        now: datetime,
        since: datetime | None,
        after: tuple[datetime, str],
        k: int,
        pos: int | None = None,
    ) -> list[tuple]:
        """The last ``k`` visible versions at or before ``after`` (for page_repeat), in order."""
        if self._fast(t, now, since, after, pos):
            sql = f"{self._select(t)} WHERE pos > ? AND pos <= ? AND ts >= ? ORDER BY pos"
            with self.con.cursor() as cur:
                return cur.execute(sql, [int(pos) - int(k), int(pos), since or datetime.min]).fetchall()
        where, params = ["ts <= ? AND ts <= ? AND (ts < ? OR record_id <= ?)"], [now, after[0], after[0], after[1]]
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        sql = f"{self._select(t)} WHERE {' AND '.join(where)} ORDER BY ts DESC, record_id DESC LIMIT {int(k)}"
        with self.con.cursor() as cur:
            return cur.execute(sql, params).fetchall()[::-1]

    def day(self, t: Table, now: datetime, day: date) -> list[tuple]:
        lo = datetime.combine(day, datetime.min.time())
        sql = f"{self._select(t)} WHERE ts >= ? AND ts < ? AND ts <= ? ORDER BY ts, record_id"
        with self.con.cursor() as cur:
            return cur.execute(sql, [lo, lo + timedelta(days=1), now]).fetchall()

    # ------------------------------------------------------------ what is served

    def registry(self) -> dict[str, tuple[str, str, str]]:
        """USCC -> (first former name, reg no, org code) from every department's enterprises."""
        with self._lock:
            if self._registry is None:
                reg = {}
                for d in self.meta["departments"]:
                    files = self._files(d["id"], "enterprises")
                    if not files:
                        continue
                    want = ["QY_DM", "QY_CYM", "QY_ZCH", "QY_ZZJGDM"]
                    with self.con.cursor() as cur:
                        have = {r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM read_parquet({files!r})").fetchall()}
                        cols = ", ".join(f'"{c}"' if c in have else "NULL" for c in want)
                        for code, cym, zch, zzjg in cur.execute(
                            f"SELECT {cols} FROM read_parquet({files!r})"
                        ).fetchall():
                            if code and (cym or zch or zzjg):
                                reg[code] = ((cym or "").split(";")[0].strip(), zch or "", zzjg or "")
                self._registry = reg
            return self._registry

    def context(self) -> DF.Context:
        needs_registry = self.cfg.any(["name_variants", "old_codes"])
        return DF.Context(self.seed, self.end.date(), self.registry() if needs_registry else {})

    def header(self, t: Table) -> list[str]:
        fields = list(t.fields)
        if self.cfg.on("renamed_field", t.dept, t.dataset):
            old, new = DF.RENAMED.get(t.dataset, (None, None))
            fields = [new if f == old else f for f in fields]
        if self.cfg.on("missing_field", t.dept, t.dataset):
            fields = [f for f in fields if f != DF.DROPPED.get(t.dataset)]
        if self.cfg.on("unknown_field", t.dept, t.dataset):
            fields.append(DF.UNKNOWN_FIELD)
        return ENVELOPE + fields

    def render(self, t: Table, raw: tuple, ctx: DF.Context, changes: list | None = None) -> dict:
        """One served record (all values strings). A revoke carries only the envelope."""
        _, updated_at, rid, op, *values = raw
        fmask = values.pop()
        row = {"record_id": rid, "updated_at": updated_at, "op": op}
        if op == "revoke":
            return row
        row.update((f, "" if v is None else v) for f, v in zip(t.fields, values))
        if fmask:
            selected = [n for i, n in enumerate(F.DATA_FAULTS) if fmask & (1 << i)]
            found = DF.apply_data_faults(ctx, t.dataset, row, selected)
            if changes is not None:
                changes.extend(found)
        if self.cfg.on("renamed_field", t.dept, t.dataset):
            old, new = DF.RENAMED.get(t.dataset, (None, None))
            row = {(new if k == old else k): v for k, v in row.items()}
        if self.cfg.on("missing_field", t.dept, t.dataset):
            row.pop(DF.DROPPED.get(t.dataset), None)
        if self.cfg.on("unknown_field", t.dept, t.dataset):
            row[DF.UNKNOWN_FIELD] = ["新字段", "是", "否", "2"][F.hv(self.seed, "unknown_field", rid) % 4]
        return row

    def truth(self, t: Table, now: datetime) -> list[dict]:
        out = [e for ts, e in self._history[(t.dept, t.dataset)] if ts <= now]
        for name in ("renamed_field", "missing_field"):
            if self.cfg.on(name, t.dept, t.dataset):
                if name == "renamed_field" and t.dataset in DF.RENAMED and DF.RENAMED[t.dataset][0] in t.fields:
                    old, new = DF.RENAMED[t.dataset]
                    out.append({"record_id": "*", "fault": name, "field": old, "original": old, "served": new})
                elif name == "missing_field" and DF.DROPPED.get(t.dataset) in t.fields:
                    f = DF.DROPPED[t.dataset]
                    out.append({"record_id": "*", "fault": name, "field": f, "original": f, "served": ""})
        if self.cfg.on("unknown_field", t.dept, t.dataset):
            out.append(
                {
                    "record_id": "*",
                    "fault": "unknown_field",
                    "field": DF.UNKNOWN_FIELD,
                    "original": "",
                    "served": DF.UNKNOWN_FIELD,
                }
            )
        if not self.data_faults(t):
            return out
        ctx, seen = self.context(), set()
        with self.con.cursor() as cur:
            cur.execute(f"{self._select(t)} WHERE fmask <> 0 AND ts <= ? ORDER BY ts, record_id", [now])
            while batch := cur.fetchmany(5000):
                for raw in batch:
                    changes: list = []
                    self.render(t, raw, ctx, changes)
                    for fault, field, original, served in changes:
                        key = (raw[2], fault, field, original, served)
                        if key not in seen:
                            seen.add(key)
                            out.append(
                                {
                                    "record_id": raw[2],
                                    "fault": fault,
                                    "field": field,
                                    "original": original,
                                    "served": served,
                                }
                            )
        return out


def read_meta(data_dir: Path) -> dict:
    return json.loads((Path(data_dir) / "meta.json").read_text(encoding="utf-8"))
