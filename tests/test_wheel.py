"""The built wheel (not only the editable install) carries the default bundle and only the `eyesdk` namespace."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                    "-w", str(out)], check=True, capture_output=True)
    (path,) = out.glob("eyesdk-*.whl")
    return path


def test_wheel_ships_the_default_bundle_byte_for_byte(wheel: Path) -> None:
    bundle = ROOT / "eyesdk" / "models" / "default"
    with zipfile.ZipFile(wheel) as zf:
        for f in bundle.iterdir():
            data = zf.read(f"eyesdk/models/default/{f.name}")
            assert hashlib.sha256(data).digest() == hashlib.sha256(f.read_bytes()).digest(), f.name


def test_wheel_has_no_generic_top_level_packages(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        tops = {n.split("/")[0] for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")}
        names = set(zf.namelist())
    assert tops == {"eyesdk"}
    assert "eyesdk/converters/train.py" in names and "eyesdk/benchmarks/cli.py" in names
