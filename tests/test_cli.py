"""The command line: lazy imports, clear messages and the exit codes of operations.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "safecredit"


def sc(*args, env=None, cwd=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=e, cwd=cwd, timeout=120)


def test_help_lists_every_command_of_operations_md():
    r = sc("--help")
    assert r.returncode == 0
    for cmd in ("simulate", "run", "replay", "explain", "publish", "serve", "keys", "signing-key", "check"):
        assert cmd in r.stdout


def test_cli_module_does_not_import_heavy_libraries():
    code = (
        "import sys, safecredit.cli; "
        "heavy = [m for m in ('dagster', 'great_expectations', 'pandas', 'duckdb', 'polars') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_missing_sources_file_is_a_bilingual_usage_error(tmp_path):
    r = sc("run", "--home", str(tmp_path))
    assert r.returncode == 2
    assert "找不到数据源配置文件" in r.stderr and "Sources file" in r.stderr
    assert "Traceback" not in r.stderr


def test_unset_variable_in_sources_is_exit_2(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - id: yjj\n    base_url: http://127.0.0.1:9\n    token: ${SC_TEST_UNSET_TOKEN}\n"
        "    datasets: [penalties]\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SC_TEST_UNSET_TOKEN"}
    r = subprocess.run([str(BIN), "run", "--home", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert "SC_TEST_UNSET_TOKEN" in r.stderr and "Traceback" not in r.stderr


def test_unknown_dataset_in_sources_names_the_place(tmp_path):
    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - id: yjj\n    base_url: http://127.0.0.1:9\n    token: t\n    datasets: [penalty]\n",
        encoding="utf-8",
    )
    r = sc("run", "--home", str(tmp_path))
    assert r.returncode == 2
    assert "penalty" in r.stderr and "departments[0]" in r.stderr


def test_second_writer_gets_exit_3(tmp_path):
    """The warehouse lock is shared: while one process holds it, `run` exits 3 at once."""
    (tmp_path / "sources.yaml").write_text(
        "departments:\n  - id: yjj\n    base_url: http://127.0.0.1:9\n    token: t\n    datasets: [penalties]\n",
        encoding="utf-8",
    )
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from safecredit import config; from safecredit.warehouse import writer_lock\n"
            f"with writer_lock(config.paths({str(tmp_path)!r}), 'test holder'):\n"
            "    print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = sc("run", "--home", str(tmp_path))
        assert r.returncode == 3, r.stderr
        assert "test holder" in r.stderr
    finally:
        holder.communicate("", timeout=30)
