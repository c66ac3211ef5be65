"""Directories that appear whole or not at all: bundles and packs are built in a staging directory next to the
target and renamed into place once complete.

An existing target is first renamed aside and deleted only once the new one stands in its place, so an exception or
a kill at any point leaves either the old directory or the new one, never half of one. A target is replaced only if
it holds the kind's marker file (a bundle's ``manifest.json``, a pack's ``pack.json``): a user's own folder is never
deleted. What a killed build leaves beside the target is removed by the next successful one
(:func:`remove_stale_leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path


def check_replaceable(target: Path, marker: str, what: str) -> None:
    """Refuse a target that is not a directory, or a non-empty directory without ``marker`` (not one of ours)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise FileExistsError(f"{target} exists and is not a directory; refusing to replace it with a {what}")
    if target.is_dir() and any(target.iterdir()) and not (target / marker).is_file():
        raise FileExistsError(
            f"{target} is a non-empty directory without {marker}, so it is not an eyesdk {what}; refusing to "
            "replace it: choose another output path or empty it"
        )


@contextlib.contextmanager
def staged_directory(target: str | Path, marker: str, what: str) -> Iterator[Path]:
    """Yield a fresh staging directory next to ``target``; on success it replaces ``target`` in one rename.

    The body must write ``marker`` last. On any exception the staging directory is removed and ``target`` is
    untouched. An existing target is renamed aside, the new one renamed in, then the old one deleted; if the second
    rename fails the old one is renamed back.
    """
    target = Path(target).absolute()
    check_replaceable(target, marker, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=_leftover_prefix(target), suffix=".building", dir=target.parent))
    try:
        yield stage
        if not (stage / marker).is_file():
            raise RuntimeError(f"{what} staged in {stage} has no {marker}; it was not completed")
        os.chmod(stage, 0o755)  # mkdtemp makes it private; a bundle or pack is meant to be read by others
        check_replaceable(target, marker, what)
        _swap_into_place(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    remove_stale_leftovers(target)


# Staging and set-aside directories are named .<target>.<host>-<pid>.<random>.building|.old: a build killed with
# SIGKILL cannot clean up after itself, so the next successful build of the same target does it, for the leftovers
# of processes of this host that no longer exist (a running build's, or another machine's on a shared disk, stay).


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname().split(".")[0])[:32] or "host"


def _leftover_prefix(target: Path) -> str:
    return f".{target.name}.{_host_tag()}-{os.getpid()}."


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_leftovers(target: Path) -> list[Path]:
    """Delete what killed builds of ``target`` left beside it; returns the removed directories.

    Called only after a new bundle stands at ``target``: after a kill between the two renames of a swap, the old
    bundle's only copy is its ``.old`` directory, and it must survive until then. POSIX only (``os.kill(pid, 0)`` is
    a liveness probe there; on Windows it would terminate the process).
    """
    if os.name != "posix":
        return []
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(_host_tag())}-(\d+)\.[^.]+\.(?:building|old)")
    removed = []
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _process_exists(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _swap_into_place(stage: Path, target: Path) -> None:
    if not target.exists():
        os.rename(stage, target)
        return
    old = Path(tempfile.mkdtemp(prefix=_leftover_prefix(target), suffix=".old", dir=target.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
