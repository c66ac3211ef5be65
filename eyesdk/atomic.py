"""Atomic file writes: a temporary file in the target's folder, fsync, then os.replace.

Readers (and a process killed mid-write) see the old file or the new one, never half of one. Every file the project
saves for a user - checkpoints, fold files, crop caches, reports, tuning caches - goes through here.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _create_temp(folder: Path, name: str, mode: int) -> tuple[int, Path]:
    """A new temp file beside the target, created with ``mode`` less the umask, as open() creates files (mkstemp
    makes 0600 files, and forcing a mode afterwards ignored a user's umask 077)."""
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, _CREATE, mode), tmp
        except FileExistsError:  # 64 random bits: practically never
            continue


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object], mode: int = 0o644) -> Path:
    """Call write(handle) on a temp file next to path, then rename it over path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
