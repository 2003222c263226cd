"""Entry point of the benchmarks: ``python -m bench.run [--only NAME]... [options]``.

Each benchmark is a module of this package with ``add_arguments(parser)`` and ``run(args)``,
listed in ``BENCHMARKS``; ``--only`` picks some (default: all). Every benchmark parses the
options with its own parser (so two may both have a ``--seed``); an option no selected benchmark
knows is an error. Results go to ``bench/out/`` (git-ignored). See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

BENCHMARKS = ("ingest", "rules", "city", "api", "national")


def _parser(name: str) -> argparse.ArgumentParser:
    mod = importlib.import_module(f"bench.{name}")
    p = argparse.ArgumentParser(
        prog=f"python -m bench.run --only {name}", description=(mod.__doc__ or "").split("\n\n")[0]
    )
    mod.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    top = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only this benchmark (repeatable; known: {', '.join(BENCHMARKS)})",
    )
    top.add_argument("-h", "--help", action="store_true")
    known, rest = top.parse_known_args(argv)
    selected = list(dict.fromkeys(known.only or BENCHMARKS))
    if known.help:
        top.print_help()
        for name in selected:
            print()
            _parser(name).print_help()
        return 0
    parsed, unknown_to_all = [], None
    for name in selected:
        args, unknown = _parser(name).parse_known_args(rest)
        parsed.append((name, args))
        unknown_to_all = set(unknown) if unknown_to_all is None else unknown_to_all & set(unknown)
    if unknown_to_all:
        top.error(
            f"unrecognized arguments for {', '.join(selected)}: {' '.join(a for a in rest if a in unknown_to_all)}"
        )
    for name, args in parsed:
        importlib.import_module(f"bench.{name}").run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
