"""Imports point one way: the library (`safecredit/`) ← assets (`assets/`) ← the code location
(`pipelines/`). Only the command line reaches up, lazily, inside the commands that run the job."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPPER = {"safecredit": ("assets", "pipelines"), "assets": ("pipelines",)}


def _imports(tree: ast.AST):
    """(module imported, whether at module level) for every import statement."""
    top = set(map(id, ast.iter_child_nodes(tree)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, id(node) in top


def test_imports_point_one_way():
    offending = []
    for package, forbidden in UPPER.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for module, at_top in _imports(ast.parse(path.read_text(encoding="utf-8"))):
                if module.split(".")[0] not in forbidden:
                    continue
                if rel == "safecredit/cli.py" and not at_top and module == "pipelines.runner":
                    continue  # `run`, `replay`, `demo`: the job of the code location, loaded lazily
                offending.append(f"{rel} imports {module}")
    assert offending == []
