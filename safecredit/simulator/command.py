"""`safecredit simulate`: generate data if needed, serve the simulated departments, write sources."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path

from .faults import FAULTS, parse_faults
from .server import Simulator, start_simulator
from .store import read_meta


def print_catalogue() -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for f in FAULTS.values():
            print(f"{f.name:18} {f.category:9} {f.default_rate:<6g} {f.description}")
        return
    table = Table(title="simulator faults (name[:department|dataset|mode][:rate], comma-separated)")
    for col in ("name", "category", "default rate", "description"):
        table.add_column(col)
    for f in FAULTS.values():
        modes = f" (modes: {', '.join(f.modes)})" if f.modes else ""
        table.add_row(f.name, f.category, f"{f.default_rate:g}", f.description + modes)
    table.caption = "also: realistic (a mild mix), none"
    Console().print(table)


def print_departments(sim: Simulator, sources: Path) -> None:
    """One plain line per department (copy-paste friendly: no wrapping of URLs or tokens)."""
    print(f"simulated departments, clock at {sim.now.isoformat()}:")
    for d in sim.departments:
        print(
            f"  {d['id']:<5} {d['base_url']:<24} {d['token']:<18} {d['transport']:<4}  {d['name']}: "
            f"{', '.join(d['datasets'])}"
        )
    print(f"sources written to {sources}; Ctrl-C stops")


def ensure_data(home: Path, seed: int, scale: int) -> Path:
    """``<home>/sim/data-s<seed>-n<scale>``, generated on first use (atomically: tmp dir, then rename)."""
    from safecredit.generator import GENERATOR_VERSION, generate

    out = Path(home) / "sim" / f"data-s{seed}-n{scale}"
    if (out / "meta.json").exists() and read_meta(out).get("generator_version") == GENERATOR_VERSION:
        return out
    print(f"generating data (seed {seed}, scale {scale}) into {out} ...")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    generate(tmp, seed=seed, scale=scale)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def simulate(
    port: int = 8701,
    seed: int = 42,
    scale: int = 5000,
    faults: str | None = None,
    *,
    home: Path,
    data_dir: Path | None = None,
    sources_out: Path | None = None,
    block: bool = True,
) -> Simulator | None:
    """Serve until Ctrl-C (``block``), or return the running simulator for the caller to stop.

    ``faults``: None means the realistic mix; ``"none"`` perfectly clean; ``"list"`` prints the
    catalogue and returns None."""
    if faults == "list":
        print_catalogue()
        return None
    parsed = parse_faults("realistic" if faults is None else faults)
    data_dir = Path(data_dir) if data_dir else ensure_data(Path(home), seed, scale)
    sim = start_simulator(data_dir, port=port, seed=seed, faults=parsed)
    keep, previous = False, None
    try:
        sources = sim.write_sources(Path(sources_out) if sources_out else Path(home) / "sources.yaml")
        print_departments(sim, sources)
        if not block:
            keep = True
            return sim
        if threading.current_thread() is threading.main_thread():  # SIGTERM stops as cleanly as Ctrl-C
            previous = signal.signal(signal.SIGTERM, _interrupt)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if not keep:
            sim.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return None


def _interrupt(signum, frame):
    raise KeyboardInterrupt
