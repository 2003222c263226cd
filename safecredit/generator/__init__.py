"""Synthetic department data for SafeCredit Exchange (see ``generate``).

>>> from safecredit.generator import generate, DEFAULT_DEPARTMENTS
>>> meta = generate(Path("sim/data"), seed=42, scale=5000)        # doctest: +SKIP

Layout: ``out_dir/meta.json`` and ``out_dir/<dept>/<dataset>/part-NNNNN.parquet``; every column
is a string: the envelope (``record_id``, ``updated_at``, ``op``) then the field codes of
department-feeds.md §3 in the spec's order (:data:`DATASET_FIELDS`).
"""

from .calibration import (
    CALIBRATION_TOLERANCE,
    REFERENCE_RECORD,
    REFERENCE_SUBJECTS,
    accident_grade,
    calibration_sample,
    generate_accident_frame,
)
from .core import BLOCK, GENERATOR_VERSION, generate
from .scenarios import GOLDEN
from .vocab import DEFAULT_DEPARTMENTS
from .writer import DATASET_FIELDS, ENVELOPE

__all__ = [
    "generate",
    "DEFAULT_DEPARTMENTS",
    "DATASET_FIELDS",
    "ENVELOPE",
    "GENERATOR_VERSION",
    "BLOCK",
    "REFERENCE_SUBJECTS",
    "REFERENCE_RECORD",
    "CALIBRATION_TOLERANCE",
    "calibration_sample",
    "generate_accident_frame",
    "accident_grade",
    "GOLDEN",
]
