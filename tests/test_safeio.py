"""eyesdk.safeio: regular files only, never blocking, capped; strict JSON with every failure one named error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eyesdk.safeio import RefusedFileError, open_regular, parse_json, read_capped, read_regular


def test_reads_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b'{"a": 1}')
    assert read_regular(tmp_path / "a.json", 100) == b'{"a": 1}'
    with open_regular(tmp_path / "a.json") as (handle, size):
        assert size == 8 and handle.read() == b'{"a": 1}'


def test_refuses_over_the_cap(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 101)
    with pytest.raises(RefusedFileError, match=r"is over the limit of 100 bytes \(101 bytes\)"):
        read_regular(tmp_path / "big", 100)


def test_refuses_a_file_that_grew_while_read(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    with open_regular(tmp_path / "f") as (handle, size):
        (tmp_path / "f").write_bytes(b"abcdef")  # same inode, longer now
        with pytest.raises(RefusedFileError, match="grew while being read"):
            read_capped(handle, size, 100)


def test_fifo_and_device_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(RefusedFileError, match=r"is not a regular file \(a FIFO, device or socket\)"):
        read_regular(tmp_path / "pipe", 100)
    if Path("/dev/zero").exists():
        with pytest.raises(RefusedFileError, match="is not a regular file"):
            read_regular("/dev/zero", 100)


def test_opening_errors_are_what_open_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "missing", 100)
    with pytest.raises(IsADirectoryError, match="Is a directory"):
        read_regular(tmp_path, 100)
    (tmp_path / "real").write_bytes(b"x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert read_regular(tmp_path / "link", 10) == b"x"
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        read_regular(tmp_path / "link", 10, follow_symlinks=False)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xef\xbb\xbf{}", "starts with a byte-order mark"),
        ('{"a": 1}'.encode("utf-16"), r"is not UTF-8 \(NUL bytes or a UTF-16 byte-order mark"),
        ('{"a": 1}'.encode("utf-16-be"), "is not UTF-8"),
        (b'{"a": "\xff"}', r"is not UTF-8 \('utf-8' codec can't decode"),
        (b'{"a": 1, "a": 2}', "has the key 'a' twice"),
        (b'{"o": {"b": 1, "b": 1}}', "has the key 'b' twice"),
        (b"[" * 50_000 + b"]" * 50_000, "is nested too deeply"),
        (b'{"n": ' + b"7" * 5000 + b"}", "is not valid JSON: Exceeds the limit"),
        (b"{not json", "is not valid JSON: Expecting property name"),
        (b"", "is not valid JSON"),
    ],
)
def test_strict_json_refusals(raw: bytes, message: str) -> None:
    with pytest.raises(RefusedFileError, match=message):
        parse_json(raw)


def test_strict_json_accepts_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\xc3\xa9"], "b": {"c": null}}') == {"a": [1, 2.5, "é"], "b": {"c": None}}
