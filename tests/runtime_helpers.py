"""Helpers shared by the runtime tests (test_api, test_bundle, test_selection, test_tune, test_cli).

The tiny bundle is built once per test session by the converters' own ``make_tiny_bundle`` (real artifacts of all
nine format x precision pairs), then copied when a test needs to damage it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

_BUILT: dict[str, Path] = {}


def tiny_bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the session's tiny bundle, built on first use; skips where the converter set is not installed."""
    if "tiny" not in _BUILT:
        try:
            from eyesdk.converters.testing import make_tiny_bundle
        except ImportError as exc:  # a runtime-only install has no torch / converters
            pytest.skip(f"the tiny test bundle needs the converter set (pip install 'eyesdk[train]'): {exc}")
        _BUILT["tiny"] = make_tiny_bundle(tmp_path_factory.mktemp("tiny-bundle") / "eyestate-tiny")
    return _BUILT["tiny"]


def copy_bundle(src: Path, dst: Path) -> Path:
    """A private copy of a bundle that a test may damage."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def read_manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())


def write_manifest(bundle: Path, manifest: dict[str, Any]) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))


def edit_manifest(bundle: Path, **changes: Any) -> dict[str, Any]:
    """Set top-level manifest keys (None deletes the key) and write it back; the manifest carries no checksum."""
    manifest = read_manifest(bundle)
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    write_manifest(bundle, manifest)
    return manifest


def drop_artifacts(bundle: Path, *pairs: tuple[str, str]) -> None:
    """Remove (format, precision) entries from the manifest, as if they had failed their drift gate."""
    manifest = read_manifest(bundle)
    manifest["artifacts"] = [a for a in manifest["artifacts"] if (a["format"], a["precision"]) not in pairs]
    write_manifest(bundle, manifest)


def rehash(bundle: Path, *relatives: str) -> None:
    """Record the current size + sha256 of files in the manifest, as a careful attacker (or a rebuild) would."""
    import hashlib

    manifest = read_manifest(bundle)
    for rel in relatives:
        data = (bundle / rel).read_bytes()
        manifest["files"][rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    write_manifest(bundle, manifest)


def run_isolated(code: str, timeout: float = 60.0, memory_bytes: int | None = None) -> Any:
    """Run Python code in a child process (hangs and crashes stay there), optionally under an address-space limit."""
    import subprocess
    import sys

    prefix = ""
    if memory_bytes is not None:
        prefix = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory_bytes}, {memory_bytes}))\n"
    try:
        return subprocess.run([sys.executable, "-c", prefix + code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child process hung for {timeout} s: {exc}")
