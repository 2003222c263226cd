"""Department simulator: serves generated data over the department feed protocol
(/work/shared/spec/department-feeds.md) with named, deterministic faults."""

from .faults import FAULTS, REALISTIC_FAULTS, Fault, parse_faults
from .server import Simulator, start_simulator

__all__ = ["FAULTS", "REALISTIC_FAULTS", "Fault", "Simulator", "parse_faults", "start_simulator"]
