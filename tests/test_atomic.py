"""Atomic writes: the old file survives a failed write, the new one is complete and world-readable."""

from __future__ import annotations

import stat

import pytest

from eyesdk.atomic import atomic_write, atomic_write_text


def test_writes_complete_readable_file(tmp_path) -> None:
    path = atomic_write_text(tmp_path / "sub" / "a.json", '{"x": 1}')
    assert path.read_text() == '{"x": 1}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path) -> None:
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def explode(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, explode)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_umask_is_respected(tmp_path) -> None:
    """Also: atomic_write forced 0644 even under umask 077; it now creates files as open() would."""
    import os

    old = os.umask(0o077)
    try:
        private = atomic_write_text(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_a_temp_beside_then_replace_with_gives_a_readable_file_under_the_name(tmp_path) -> None:
    """For writers that open the file by name (the annotated video): the suffix kept, mode as open() makes it."""
    import os

    from eyesdk.atomic import replace_with, temp_beside

    target = tmp_path / "out" / "clip.mp4"
    tmp = temp_beside(target, ".mp4")
    assert tmp.parent == target.parent and tmp.name.startswith(".clip.mp4.") and tmp.suffix == ".mp4"
    tmp.write_bytes(b"video")
    old = os.umask(0o022)
    os.umask(old)
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o644 & ~old  # mkstemp would have made it 0600
    assert replace_with(tmp, target) == target and target.read_bytes() == b"video" and not tmp.exists()
