"""Durable file-system steps: fsync'd writes, renames, atomic JSON replace, the publisher lock.

Every durable step calls `step(label)`. In production that does nothing; a crash test installs a
`STEP_HOOK` (in a child process) that SIGKILLs the process after the N-th step, so crash points
are deterministic instead of sleep-and-hope.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from .errors import PublishLocked

STEP_HOOK: Callable[[str], None] | None = None

TMP_MARK = ".tmp-"


def step(label: str) -> None:
    """Mark the end of one durable step (see module doc)."""
    if STEP_HOOK is not None:
        STEP_HOOK(label)


def _fsync_path(path: Path, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    step(f"fsync {path.name}")


def fsync_dir(path: Path) -> None:
    _fsync_path(path, os.O_DIRECTORY)


def fsync_file(path: Path) -> None:
    _fsync_path(path, 0)


def mkdir_durable(path: Path) -> None:
    """Create `path` (and parents) and make the new entries durable."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        fsync_dir(d.parent)


def rename_durable(src: Path, dst: Path) -> None:
    os.rename(src, dst)
    step(f"rename {src.name} -> {dst.name}")
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def write_bytes_durable(target: Path, data: bytes) -> None:
    """Replace `target` atomically: write a temp file, fsync it, os.replace, fsync the dir."""
    tmp = tmp_name(target)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    step(f"write {tmp.name}")
    os.replace(tmp, target)
    step(f"replace {target.name}")
    fsync_dir(target.parent)


def json_bytes(obj: Any) -> bytes:
    """Human-readable JSON for catalogue and manifest files (UTF-8, trailing newline)."""
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write_json_durable(target: Path, obj: Any) -> None:
    write_bytes_durable(target, json_bytes(obj))


def remove_durable(path: Path) -> None:
    """Delete a file or directory tree (missing is fine) and make it durable."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            return
    step(f"remove {path.name}")
    if path.parent.exists():
        fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class DirLock:
    """An exclusive flock on `<root>/.lock`; the kernel releases it if the holder dies."""

    def __init__(self, root: Path, timeout: float = 30.0):
        self.path = root / ".lock"
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> DirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    os.close(fd)
                    raise PublishLocked(
                        f"another publisher holds {self.path} (waited {self.timeout:.0f}s)",
                        f"另一个发布进程正在使用 {self.path}（已等待 {self.timeout:.0f} 秒）",
                    ) from exc
                time.sleep(0.05)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
