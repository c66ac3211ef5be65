"""Load and verify a model bundle (``docs/bundle-format.md``) before any backend reads a byte of it.

A bundle is trusted only after its manifest schema, its preprocessing contract and the size + sha256 of every file
listed in ``files`` have been checked, and after every path in it has been shown to be a plain relative path that
stays inside the bundle (no absolute paths, no ``..``, no symlinks), and that no unlisted file sits beside them.
Every failure is a ModelIntegrityError that names the file or manifest key at fault, so a corrupted download or a
hand-edited manifest is caught at load instead of surfacing later as wrong predictions.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .errors import ModelIntegrityError
from .formats import FORMATS, PRECISIONS
from .preprocess import PreprocessContract

SCHEMA = "eyesdk.bundle/1"
MANIFEST = "manifest.json"
LABELS = ["closed", "open"]
REQUIRED_KEYS = ("schema", "preprocess", "labels", "output", "threshold", "files", "artifacts")
ARTIFACT_KEYS = ("format", "precision", "file", "batch", "temperature")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: everything the runtime needs, rebuilt from the manifest."""

    path: Path  # resolved bundle directory
    manifest: dict[str, Any]
    sha256: str  # of manifest.json's bytes; it pins every file's checksum, so it identifies the whole bundle
    contract: PreprocessContract
    artifacts: list[dict[str, Any]]
    threshold: float
    labels: tuple[str, str] = ("closed", "open")
    _by_key: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    def artifact(self, fmt: str, precision: str) -> dict[str, Any] | None:
        """The manifest entry for a format x precision, or None when the bundle does not ship it."""
        return self._by_key.get((fmt, precision))

    def file(self, relative: str) -> Path:
        """Absolute path of a verified file of the bundle."""
        return self.path.joinpath(*PurePosixPath(relative).parts)

    def probe(self) -> Any:
        """The fixed probe inputs (N, 1, S, S) float32 the artifacts' reference_logits were computed on, or None."""
        probe = self.manifest.get("probe")
        if not probe:
            return None
        import numpy as np

        rel = probe["file"]
        try:
            data = np.load(self.file(rel), allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(f"{self.path}: probe file {rel!r} cannot be read: {exc}") from exc
        size = self.contract.size
        if data.dtype != np.float32 or data.ndim != 4 or data.shape[1:] != (1, size, size):
            raise ModelIntegrityError(
                f"{self.path}: probe file {rel!r} has shape {data.shape} {data.dtype}; "
                f"expected (N, 1, {size}, {size}) float32"
            )
        return data


def _fail(bundle: Path, message: str) -> ModelIntegrityError:
    return ModelIntegrityError(f"bundle {bundle}: {message}")


def check_relative_path(root: Path, relative: Any, where: str) -> Path:
    """Resolve a manifest path, refusing anything that is not a plain relative path to a regular file inside root.

    Each component is checked with lstat, so a symlink anywhere along the way is refused even when it points back
    inside the bundle: a verified bundle must be self-contained bytes, not a view of something else.
    """
    if not isinstance(relative, str) or not relative:
        raise _fail(root, f"{where}: path {relative!r} must be a non-empty string")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or relative.startswith(("/", "\\")):
        raise _fail(root, f"{where}: path {relative!r} is absolute; paths must be relative to the bundle")
    if "\\" in relative:
        raise _fail(root, f"{where}: path {relative!r} uses backslashes; use '/' separated relative paths")
    parts = posix.parts
    if any(part in ("..", ".") for part in relative.split("/")) or not parts:
        raise _fail(root, f"{where}: path {relative!r} has '.' or '..' components; it must stay inside the bundle")
    current = root
    for i, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise _fail(root, f"{where}: file {relative!r} is missing") from None
        except OSError as exc:
            raise _fail(root, f"{where}: file {relative!r} cannot be read: {exc}") from exc
        if stat.S_ISLNK(mode):
            raise _fail(root, f"{where}: {'/'.join(parts[: i + 1])!r} is a symlink; bundles must hold plain files")
        last = i == len(parts) - 1
        if last and not stat.S_ISREG(mode):
            raise _fail(root, f"{where}: {relative!r} is not a regular file")
        if not last and not stat.S_ISDIR(mode):
            raise _fail(root, f"{where}: {'/'.join(parts[: i + 1])!r} is not a directory")
    return current


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_files(root: Path, files: Any) -> None:
    if not isinstance(files, dict) or not files:
        raise _fail(root, "manifest key 'files' must be a non-empty object {relative_path: {sha256, size}}")
    for rel, entry in files.items():
        path = check_relative_path(root, rel, "files")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not isinstance(
            entry.get("size"), int
        ):
            raise _fail(root, f"files[{rel!r}] must be {{'sha256': hex string, 'size': int}}, got {entry!r}")
        size = path.stat().st_size
        if size != entry["size"]:
            raise _fail(root, f"file {rel!r} is {size} bytes; the manifest says {entry['size']} (modified/truncated)")
        actual = file_sha256(path)
        if actual != entry["sha256"].lower():
            raise _fail(root, f"file {rel!r} has sha256 {actual}; the manifest says {entry['sha256']} (modified)")


def _check_nothing_unlisted(root: Path, files: dict[str, Any]) -> None:
    """Refuse any file in the bundle directory that ``files`` does not list (the format lists every file).

    A bundle is exactly its verified bytes: a leftover from a half copy, an artifact dropped in by hand, or a side
    file a runtime might pick up on its own (an ONNX external-data file) would otherwise sit there unverified.
    """
    for dirpath, dirnames, filenames in os.walk(root):  # symlinked directories are listed in dirnames, not entered
        here = Path(dirpath)
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            rel = (here / name).relative_to(root).as_posix()
            if rel != MANIFEST and rel not in files:
                raise _fail(root, f"{rel!r} is not listed in 'files' but sits in the bundle; a bundle holds "
                                  "exactly its listed files: remove it or rebuild the bundle")


def _check_artifacts(root: Path, artifacts: Any, files: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    if not isinstance(artifacts, list) or not artifacts:
        raise _fail(root, "manifest key 'artifacts' must be a non-empty list")
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for i, entry in enumerate(artifacts):
        where = f"artifacts[{i}]"
        if not isinstance(entry, dict):
            raise _fail(root, f"{where} must be an object, got {type(entry).__name__}")
        missing = [k for k in ARTIFACT_KEYS if k not in entry]
        if missing:
            raise _fail(root, f"{where} lacks key(s) {', '.join(missing)}")
        fmt, precision, rel = entry["format"], entry["precision"], entry["file"]
        if fmt not in FORMATS:
            raise _fail(root, f"{where}.format {fmt!r} is unknown; known: {', '.join(FORMATS)}")
        if precision not in PRECISIONS:
            raise _fail(root, f"{where}.precision {precision!r} is unknown; known: {', '.join(PRECISIONS)}")
        if (fmt, precision) in by_key:
            raise _fail(root, f"{where}: {fmt} {precision} is listed twice")
        check_relative_path(root, rel, f"{where}.file")
        for path in FORMATS[fmt].files(rel):
            if path not in files:
                raise _fail(root, f"{where}: {path!r} is not listed in 'files', so its checksum cannot be verified")
        batch = entry["batch"]
        if not (batch == "dynamic" or (isinstance(batch, int) and not isinstance(batch, bool) and batch > 0)):
            raise _fail(root, f"{where}.batch must be 'dynamic' or a positive int, got {batch!r}")
        temperature = entry["temperature"]
        if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
            raise _fail(root, f"{where}.temperature must be a positive finite number, got {temperature!r}")
        by_key[(fmt, precision)] = entry
    return by_key


def _check_probe(root: Path, manifest: dict[str, Any], files: dict[str, Any]) -> None:
    probe = manifest.get("probe")
    if probe is None:
        return
    if not isinstance(probe, dict) or not isinstance(probe.get("file"), str):
        raise _fail(root, f"manifest key 'probe' must be {{'file': path, 'count': N}}, got {probe!r}")
    check_relative_path(root, probe["file"], "probe.file")
    if probe["file"] not in files:
        raise _fail(root, f"probe file {probe['file']!r} is not listed in 'files'")


def load_bundle(path: str | os.PathLike[str] | None = None) -> Bundle:
    """Read and verify a bundle directory (the embedded default when path is None)."""
    root = Path(path) if path is not None else default_bundle_path()
    if not root.exists():
        raise FileNotFoundError(f"model bundle {root} does not exist")
    if not root.is_dir():
        raise _fail(root, "is not a directory; a bundle is a directory holding manifest.json and the artifacts")
    root = root.resolve()
    manifest_path = root / MANIFEST
    if manifest_path.is_symlink():
        raise _fail(root, f"{MANIFEST} is a symlink; bundles must hold plain files")
    try:
        raw = manifest_path.read_bytes()
    except FileNotFoundError:
        raise _fail(root, f"has no {MANIFEST}; it is not an eyesdk bundle") from None
    except OSError as exc:
        raise _fail(root, f"{MANIFEST} cannot be read: {exc}") from exc
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(root, f"{MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise _fail(root, f"{MANIFEST} must hold a JSON object")
    if manifest.get("schema") != SCHEMA:
        raise _fail(root, f"unknown schema {manifest.get('schema')!r}; this eyesdk reads {SCHEMA!r}")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise _fail(root, f"{MANIFEST} lacks key(s) {', '.join(missing)}")

    # Checksums first: nothing below (nor any backend) may read a byte that was not verified.
    files = manifest["files"]
    if isinstance(files, dict) and MANIFEST in files:
        raise _fail(root, f"'files' lists {MANIFEST} itself; it cannot hold its own checksum")
    _check_files(root, files)
    _check_nothing_unlisted(root, files)

    if not isinstance(manifest["preprocess"], dict):
        raise _fail(root, "manifest key 'preprocess' must be an object (PreprocessContract.to_dict())")
    try:
        contract = PreprocessContract.from_dict(manifest["preprocess"])
    except (TypeError, ValueError) as exc:
        raise _fail(root, f"manifest key 'preprocess': {exc}") from exc
    if manifest["labels"] != LABELS:
        raise _fail(root, f"manifest key 'labels' is {manifest['labels']!r}; this eyesdk reads {LABELS!r}")
    output = manifest["output"]
    if not isinstance(output, dict) or output.get("kind") != "logit" or output.get("positive") != "open":
        raise _fail(root, f"manifest key 'output' is {output!r}; expected {{'kind': 'logit', 'positive': 'open'}}")
    threshold = manifest["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise _fail(root, f"manifest key 'threshold' must be a probability in [0, 1], got {threshold!r}")
    by_key = _check_artifacts(root, manifest["artifacts"], files)
    _check_probe(root, manifest, files)
    return Bundle(
        path=root,
        manifest=manifest,
        sha256=hashlib.sha256(raw).hexdigest(),
        contract=contract,
        artifacts=list(manifest["artifacts"]),
        threshold=float(threshold),
        _by_key=by_key,
    )


def default_bundle_path() -> Path:
    """Where the embedded default bundle lives: ``eyesdk/models/default`` inside the installed package."""
    from importlib import resources

    return Path(str(resources.files("eyesdk.models") / "default"))


def load_default_bundle() -> Bundle:
    """The embedded default bundle; a clear FileNotFoundError when this install does not ship one."""
    path = default_bundle_path()
    if not (path / MANIFEST).exists():
        raise FileNotFoundError(
            f"the embedded default model bundle is missing ({path} has no {MANIFEST}); this eyesdk install is "
            "incomplete: reinstall eyesdk, or pass model='path/to/bundle' to EyeState / --model to the CLI"
        )
    return load_bundle(path)
