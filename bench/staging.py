"""Staging of one dataset on a kept warehouse, statement by statement.

    python -m bench.staging --warehouse COPY.duckdb --dataset penalties

`COPY` is a copy of a warehouse that holds `raw.<dataset>` (e.g. `bench.rules --keep`'s or
`bench.national --keep`'s): `staging.stage` rewrites its staged and quality tables. Prints the
staging's counts, its wall and CPU seconds, and the statements that cost most (CPU seconds summed
over statements of the same shape).
"""

from __future__ import annotations

import argparse
import re
import resource
import time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Timed:
    """The connection, with each `execute` timed (what `stage` calls)."""

    def __init__(self, con):
        self._con, self.log = con, []

    def execute(self, sql, *args, **kwargs):
        c0, t0 = _cpu(), time.perf_counter()
        self._con.execute(sql, *args, **kwargs)
        self.log.append((_cpu() - c0, time.perf_counter() - t0, " ".join(str(sql).split())))
        return self

    def __getattr__(self, name):
        return getattr(self._con, name)


def main(argv: list[str] | None = None) -> None:
    from safecredit.staging import stage
    from safecredit.warehouse import connect

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warehouse", required=True, help="a COPY of a warehouse holding raw.<dataset> (rewritten)")
    p.add_argument("--dataset", default="penalties")
    p.add_argument("--memory-limit", default="8GB")
    p.add_argument("--top", type=int, default=8)
    args = p.parse_args(argv)
    con = connect(args.warehouse)
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    timed = _Timed(con)
    c0, t0 = _cpu(), time.perf_counter()
    print(stage(timed, args.dataset, {}))
    print(f"staging {args.dataset}: {time.perf_counter() - t0:.1f} s wall, {_cpu() - c0:.1f} CPU s")
    shapes: dict[str, list[float]] = {}
    for cpu, wall, sql in timed.log:
        agg = shapes.setdefault(re.sub(r"'[^']*'", "'?'", sql)[:110], [0.0, 0.0, 0])
        agg[0], agg[1], agg[2] = agg[0] + cpu, agg[1] + wall, agg[2] + 1
    for sql, (cpu, wall, n) in sorted(shapes.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"{cpu:7.1f} CPU s {wall:7.1f} s  x{n:<3d} {sql}")


if __name__ == "__main__":
    main()
