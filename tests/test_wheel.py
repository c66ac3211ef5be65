"""The built wheel (not only the editable install): it carries the default bundle and only the `eyesdk` namespace, and
after each documented install line every console script it installs runs."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pytest
from synthetic import synthetic_eye

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


# ------------------------------------------------------------------------------------------------ fresh installs
# Every console script of the wheel must run after every documented install (issue 13): a fresh venv per install
# line, the wheel installed from it with pip (its dependencies from the index or pip's cache), every command run
# from a clean environment outside the repository.


@dataclass
class Install:
    extra: str
    bin: Path
    home: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {"PATH": f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(self.home),
               "EYESDK_CACHE_DIR": str(self.home / "cache"), "LANG": "C.UTF-8"}
        return subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, env=env,
                              cwd=self.home, timeout=timeout)

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "Traceback" not in output, f"{' '.join(args)} ({self.extra}):\n{output}"
        return proc.stdout


@pytest.fixture(scope="module", params=["runtime", "onnx"])
def install(request: pytest.FixtureRequest, wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    """``pip install '<wheel>[EXTRA]'`` into a new venv (no pip of its own: the test's pip installs into it)."""
    if sys.platform == "win32":
        pytest.skip("POSIX venv layout")
    root = tmp_path_factory.mktemp(f"install-{request.param}")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "venv" / "bin" / "python"), "install",
                           "-q", "--disable-pip-version-check", f"{wheel}[{request.param}]"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"pip install '{wheel.name}[{request.param}]' failed:\n{proc.stderr[-3000:]}")
    home = root / "home"
    home.mkdir()
    synthetic_image = pytest.importorskip("PIL.Image")
    synthetic_image.fromarray(synthetic_eye(True, (72, 96), np.random.default_rng(0))).save(home / "eye.png")
    return Install(request.param, root / "venv" / "bin", home)


@pytest.mark.registry
def test_eyesdk_commands_run_after_install(install: Install) -> None:
    from eyesdk.cli import main as eyesdk_cli

    install.ok("eyesdk", "--help")
    for name in eyesdk_cli.list_commands(click.Context(eyesdk_cli)):
        install.ok("eyesdk", name, "--help")
    assert "bundle: eyesdk-default" in install.ok("eyesdk", "info")
    assert re.fullmatch(r"eye\.png\t(open|closed)\t[01]\.\d{4}\n", install.ok("eyesdk", "predict", "eye.png"))
    assert "chosen: " in install.ok("eyesdk", "tune")


@pytest.mark.registry
def test_eyesdk_bench_runs_after_install(install: Install) -> None:
    from eyesdk.benchmarks.cli import SUBCOMMANDS

    out = install.ok("eyesdk-bench", "--quick")
    assert re.search(r"^onnxruntime fp32 +ok ", out, re.MULTILINE), out
    if install.extra == "onnx":
        assert "openvino fp32: not installed (pip install 'eyesdk[openvino]')" in out
    listing = install.ok("eyesdk-bench", "--help")
    for name in SUBCOMMANDS:
        assert f"  {name} " in listing
        assert f"Usage: eyesdk-bench {name} [OPTIONS]" in install.ok("eyesdk-bench", name, "--help")


@pytest.mark.registry
def test_eyesdk_convert_help_runs_after_install(install: Install) -> None:
    assert "Usage: eyesdk-convert" in install.ok("eyesdk-convert", "--help")


@pytest.mark.registry
def test_eyesdk_convert_train_says_in_one_line_that_it_needs_the_train_extra(install: Install) -> None:
    data = install.home / "data"
    rng = np.random.default_rng(1)
    image_module = pytest.importorskip("PIL.Image")
    for label in ("open", "closed"):
        (data / label).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            eye = synthetic_eye(label == "open", (60, 80), rng)
            image_module.fromarray(eye).save(data / label / f"p{i}_{label}.png")
    proc = install.run("eyesdk-convert", "train", "--data", str(data), "--out", str(install.home / "model"),
                       "--folds", str(install.home / "folds.json"), "--cache", str(install.home / "crops"), "--quiet")
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "pip install 'eyesdk[train]'" in lines[0], lines
