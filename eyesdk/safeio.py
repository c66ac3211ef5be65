"""Reading files that may be hostile: regular files only, never blocking, never more than a cap; strict JSON.

A FIFO opened for reading waits for a writer forever, a device such as ``/dev/zero`` never ends, and a file can grow
between a size check and a read. Every file eyesdk reads on its own (bundle manifests, artifacts and probes, the
tuning cache, image files) is opened here: without blocking, checked to be a regular file on the open descriptor
(so nothing can be swapped in between the check and the read), and read up to a cap. JSON is read strictly: UTF-8
only (no byte-order mark, no UTF-16), no key twice, and every parser failure (deep nesting, a 5000-digit integer)
as one ``RefusedFileError``, which each caller turns into its own named error or log line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from typing import IO, Any

UTF8_BOM = b"\xef\xbb\xbf"


class RefusedFileError(ValueError):
    """A file that is not what it must be (not regular, too large, not strict JSON). Callers re-raise it as their own
    named error (ModelIntegrityError, InvalidCropError) or log it (the tuning cache); the message has no path."""


@contextlib.contextmanager
def open_regular(path: str | os.PathLike[str], follow_symlinks: bool = True) -> Iterator[tuple[IO[bytes], int]]:
    """Open a regular file for reading without blocking; yields (binary file, size). What opening raises (missing,
    a directory, permissions, a symlink when ``follow_symlinks`` is False) propagates as the OSError it is."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):  # open() raises this; os.open(O_RDONLY) opens a directory without complaint
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(info.st_mode):
            raise RefusedFileError("is not a regular file (a FIFO, device or socket)")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle, info.st_size


def read_capped(handle: IO[bytes], size: int, limit: int) -> bytes:
    """All of an open regular file of ``size`` bytes, refusing more than ``limit`` (also if it grew meanwhile)."""
    if size > limit:
        raise RefusedFileError(f"is over the limit of {limit} bytes ({size} bytes)")
    data = handle.read(size + 1)  # read(n) allocates n bytes up front: ask for what the file holds, not the cap
    if len(data) > size:
        raise RefusedFileError("grew while being read")
    return data


def read_regular(path: str | os.PathLike[str], limit: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see ``open_regular`` for what opening raises)."""
    with open_regular(path, follow_symlinks) as (handle, size):
        return read_capped(handle, size, limit)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RefusedFileError(f"has the key {key!r} twice (JSON readers disagree on which one counts)")
            seen.add(key)
    return result


def parse_json(raw: bytes) -> Any:
    """Strict JSON from bytes: UTF-8 without a byte-order mark, no duplicate keys; any failure a RefusedFileError."""
    if raw.startswith(UTF8_BOM):
        raise RefusedFileError("starts with a byte-order mark; it must be plain UTF-8 JSON")
    if b"\0" in raw or raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise RefusedFileError("is not UTF-8 (NUL bytes or a UTF-16 byte-order mark: UTF-16 or binary)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RefusedFileError(f"is not UTF-8 ({exc})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except RefusedFileError:
        raise
    except RecursionError:
        raise RefusedFileError("is nested too deeply to be a manifest or cache") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a 5000-digit number
        raise RefusedFileError(f"is not valid JSON: {exc}") from None
