"""`make demo`: simulated departments → one full run → published feeds → a summary.

The run itself (`pipelines.runner.run_pipeline`) is handed in by the command line, so the library
never imports the code location."""

from __future__ import annotations

import time
from datetime import date
from typing import TYPE_CHECKING, Callable

from safecredit import config

if TYPE_CHECKING:
    from safecredit.run_summary import RunSummary


def run_demo(
    home: str | None,
    run_pipeline: Callable[..., RunSummary],
    *,
    scale: int = 5000,
    seed: int = 42,
    faults: str = "realistic",
) -> int:
    from rich.console import Console

    from safecredit.generator import generate
    from safecredit.report import print_run_summary
    from safecredit.run_summary import exit_code
    from safecredit.simulator import start_simulator

    con = Console()
    home_path = config.resolve_home(home or (config.REPO_ROOT / "var" / "demo"))
    paths = config.Paths(home_path)
    t0 = time.monotonic()
    data_dir = paths.sim / f"data-s{seed}-n{scale}"
    if not (data_dir / "meta.json").exists():
        con.print(f"Generating synthetic departments' data (seed {seed}, {scale} subjects) …")
        generate(data_dir, seed=seed, scale=scale, progress=True)
    meta = __import__("json").loads((data_dir / "meta.json").read_text(encoding="utf-8"))
    as_of = date.fromisoformat(meta["end"])
    fault_spec = _faults(faults)
    with start_simulator(data_dir, port=0, seed=seed, faults=fault_spec) as sim:
        sources = paths.home / "sources.yaml"
        sim.write_sources(sources)
        con.print(f"Simulated departments: {', '.join(d['id'] + ' ' + d['base_url'] for d in sim.departments)}")
        con.print(f"Running the pipeline through Dagster (as of {as_of}) …")
        summary = run_pipeline(str(paths.home), str(sources), as_of)
    print_run_summary(summary, con)
    con.print(f"\nDone in {time.monotonic() - t0:.0f} s. Home: {paths.home}")
    con.print(f"  feeds:      {paths.exports}  (index.json, <feed>/versions.json, <feed>/<version>/…)")
    con.print(f"  warehouse:  {paths.warehouse}")
    con.print(f"  raw:        {paths.raw}")
    con.print("  Dagster UI: SAFECREDIT_HOME=" + str(paths.home) + " .venv/bin/dagster dev -w workspace.yaml")
    con.print("  live departments for the UI: .venv/bin/safecredit simulate --home " + str(paths.home))
    con.print(
        "  API:        .venv/bin/safecredit keys create --consumer demo --scopes restrictions:read,lists:read "
        f"--home {paths.home}; .venv/bin/safecredit serve --home {paths.home}"
    )
    print_check_page_steps(con, paths.home)
    return exit_code(summary)


def print_check_page_steps(con, home, port: int = 8000) -> None:
    """The last lines of the demo: how an approval office checks a bidder list in the browser
    (not wrapped: the commands are copied from here)."""
    con.print("\n信用核查页面 · the check page for approval offices (docs/CONSUMERS.md):")
    con.print(
        "  1. a key (shown once):  .venv/bin/safecredit keys create --consumer 市公共资源交易中心 "
        f"--scopes restrictions:read --home {home}",
        soft_wrap=True,
    )
    con.print(f"  2. the server:          .venv/bin/safecredit serve --home {home} --port {port}", soft_wrap=True)
    con.print(
        f"  3. open                 http://127.0.0.1:{port}/check  → sign in with the key, paste the codes",
        soft_wrap=True,
    )


def _faults(spec: str):
    from safecredit import simulator

    if spec in ("", "none"):
        return ()
    if spec == "realistic":
        return getattr(simulator, "REALISTIC_FAULTS", ())
    return simulator.parse_faults(spec)
