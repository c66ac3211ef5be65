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


def _create_temp(folder: Path, name: str, mode: int, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new temp file beside the target, created with ``mode`` less the umask, as open() creates files (mkstemp
    makes 0600 files, and forcing a mode afterwards ignored a user's umask 077)."""
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(8)}{suffix}"
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


def temp_beside(path: str | os.PathLike[str], suffix: str = ".tmp", mode: int = 0o644) -> Path:
    """An empty temp file next to ``path`` for a writer that must open the file by name itself (a video encoder
    picks its container from the suffix); finish with ``replace_with`` or unlink it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name, mode, suffix)
    os.close(fd)
    return tmp


def replace_with(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Put a finished temp file (from ``temp_beside``) on disk and then under ``path``'s name."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return Path(path)
