"""Load and verify a model bundle (``docs/bundle-format.md``) before any backend reads a byte of it.

A bundle is trusted only after its manifest schema, its preprocessing contract and the size + sha256 of every file
listed in ``files`` have been checked, and after every path in it has been shown to be a plain relative path that
stays inside the bundle (no absolute paths, no ``..``, no symlinks), and that no unlisted file sits beside them.
Every failure is a ModelIntegrityError that names the file or manifest key at fault, so a corrupted download or a
hand-edited manifest is caught at load instead of surfacing later as wrong predictions.

Verification is not a promise about the files later on: a backend is never handed a path to open again. It gets
``Bundle.artifact_files`` - bytes read once more, checked against the manifest's size and sha256, and those same
bytes loaded - so a file swapped after ``load_bundle`` (or raced against it) is refused, never run. Every file is
opened without following a final symlink and without blocking, checked to be regular, and read up to a cap.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from . import modelrefs
from .backends.base import ModelFiles
from .errors import ModelIntegrityError
from .formats import FORMATS, PRECISIONS
from .preprocess import PreprocessContract
from .safeio import RefusedFileError, open_regular, parse_json, read_capped, read_regular

SCHEMA = "eyesdk.bundle/1"
# Written instead when the contract standardizes inside the artifacts (normalization_in_model): eyesdk releases from
# before that field ignore contract fields they do not know and would standardize twice, but they refuse any schema
# other than /1, so such a bundle is refused by them rather than silently mis-fed. The layout is the same.
SCHEMA_IN_MODEL = "eyesdk.bundle/2"
MANIFEST = "manifest.json"
LABELS = ["closed", "open"]
OUTPUT = {"kind": "logit", "positive": "open"}  # one logit per crop; P(open) = sigmoid(z / T)
REQUIRED_KEYS = ("schema", "preprocess", "labels", "output", "threshold", "files", "artifacts")
ARTIFACT_KEYS = ("format", "precision", "file", "batch", "temperature")
MAX_MANIFEST_BYTES = 4 << 20  # the default manifest is ~30 KB; a 300 MB one is not a manifest
_HEX = frozenset("0123456789abcdef")


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
        """Absolute path of a file of the bundle (for showing; what is loaded comes from ``verified_bytes``)."""
        return self.path.joinpath(*PurePosixPath(relative).parts)

    def verified_bytes(self, relative: str) -> bytes:
        """A listed file's bytes, read now and checked against the manifest's size and sha256.

        The check made by ``load_bundle`` vouches for the bytes it read then, not for the file later: whoever loads
        a file (backends, the probe) takes these bytes, so a file changed since is refused instead of run.
        """
        return _verified(self.path, relative, self.manifest["files"][relative],
                         "changed after the bundle was verified ({}): refused, not loaded")

    def artifact_files(self, artifact: dict[str, Any]) -> ModelFiles:
        """The verified bytes of an artifact's main file and sidecars, ready for a backend's ``load``."""
        names = FORMATS[artifact["format"]].files(artifact["file"])
        data = [self.verified_bytes(name) for name in names]
        return ModelFiles(artifact["file"], data[0], tuple(data[1:]))

    def probe(self) -> Any:
        """The fixed probe inputs (N, 1, S, S) float32 the artifacts' reference_logits were computed on, or None."""
        probe = self.manifest.get("probe")
        if not probe:
            return None
        rel = probe["file"]
        try:
            return parse_probe(self.verified_bytes(rel), self.contract.size)
        except ValueError as exc:
            raise _fail(self.path, f"probe file {rel!r} {exc}") from None


def schema_for(contract: PreprocessContract) -> str:
    """The manifest schema a bundle of this contract is written with (see SCHEMA_IN_MODEL)."""
    return SCHEMA_IN_MODEL if contract.normalization_in_model else SCHEMA


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
    """sha256 of a file, streamed (converters and benchmarks hash the files they write or compare)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_probe(data: bytes, size: int) -> Any:
    """A .npy file's bytes -> (N, 1, size, size) float32, refusing anything else with a ValueError saying why.

    Parsed here rather than by ``np.load``: an .npz named .npy loads as an archive object, and a header declaring
    1e11 rows makes np.load allocate for them before noticing the file is 64 bytes long.
    """
    import io

    import numpy as np
    from numpy.lib import format as npy

    buffer = io.BytesIO(data)
    try:
        version = npy.read_magic(buffer)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read_header(buffer)
    except (ValueError, EOFError, SyntaxError, TypeError) as exc:
        raise ValueError(f"is not a .npy array ({type(exc).__name__}: {exc})") from None
    if dtype != np.dtype("<f4") or fortran or len(shape) != 4 or tuple(shape[1:]) != (1, size, size):
        raise ValueError(f"has shape {shape} {dtype}; expected (N, 1, {size}, {size}) float32 (C order)")
    offset = buffer.tell()
    expected = int(np.prod(shape, dtype=object)) * 4
    if len(data) - offset != expected:
        raise ValueError(f"declares {tuple(shape)} float32 ({expected} bytes) but holds {len(data) - offset} bytes")
    return np.frombuffer(data, dtype=np.float32, offset=offset).reshape(shape).copy()


def _read_listed(root: Path, relative: str, size: int) -> bytes:
    """A listed file's bytes: no final symlink, regular, no blocking, exactly the size the manifest gives."""
    try:
        with open_regular(root.joinpath(*PurePosixPath(relative).parts), follow_symlinks=False) as (handle, actual):
            if actual != size:
                raise _fail(root, f"file {relative!r} is {actual} bytes; the manifest says {size} "
                                  "(modified/truncated)")
            return read_capped(handle, actual, size)
    except FileNotFoundError:
        raise _fail(root, f"file {relative!r} is missing") from None
    except (OSError, RefusedFileError) as exc:
        raise _fail(root, f"file {relative!r} cannot be read: {exc}") from None


def _check_file_entry(root: Path, rel: str, entry: Any) -> None:
    sha, size = (entry.get("sha256"), entry.get("size")) if isinstance(entry, dict) else (None, None)
    if (not isinstance(sha, str) or len(sha) != 64 or not set(sha.lower()) <= _HEX
            or isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise _fail(root, f"files[{rel!r}] must be {{'sha256': 64 hex digits, 'size': int >= 0}}, got {entry!r}")


def _verified(root: Path, rel: str, entry: dict[str, Any], problem: str) -> bytes:
    """A listed file's bytes, read once (regular file, listed size) and checked against its sha256; ``problem`` is
    the message around "sha256 X; the manifest says Y"."""
    data = _read_listed(root, rel, entry["size"])
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry["sha256"].lower():
        raise _fail(root, f"file {rel!r} " + problem.format(f"sha256 {actual}; the manifest says {entry['sha256']}"))
    return data


def _check_files(root: Path, files: Any, artifacts: Any) -> None:
    """Size + sha256 of every listed file, and what the model files themselves name (ONNX external data)."""
    if not isinstance(files, dict) or not files:
        raise _fail(root, "manifest key 'files' must be a non-empty object {relative_path: {sha256, size}}")
    formats = {}  # main file -> format, for the content checks
    if isinstance(artifacts, list):
        formats = {a["file"]: a.get("format") for a in artifacts
                   if isinstance(a, dict) and isinstance(a.get("file"), str)}
    for rel, entry in files.items():
        check_relative_path(root, rel, "files")
        _check_file_entry(root, rel, entry)
        data = _verified(root, rel, entry, "has {} (modified)")
        fmt = formats.get(rel)
        try:
            named = modelrefs.files_named_by(fmt, data) if isinstance(fmt, str) else []
        except modelrefs.MalformedModelError as exc:
            raise _fail(root, f"file {rel!r} is not a well-formed {fmt} model ({exc})") from None
        if named:
            raise _fail(root, f"file {rel!r} names other files to load ({fmt} external data: "
                              f"{', '.join(map(repr, named[:3]))}); a bundle artifact must hold all its bytes itself")


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
        if not isinstance(fmt, str) or fmt not in FORMATS:
            raise _fail(root, f"{where}.format {fmt!r} is unknown; known: {', '.join(FORMATS)}")
        if not isinstance(precision, str) or precision not in PRECISIONS:
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
        if not _is_number(temperature) or not math.isfinite(temperature) or temperature <= 0:
            raise _fail(root, f"{where}.temperature must be a positive finite number, got {temperature!r}")
        tolerance = entry.get("tolerance", 0.0)
        if not _is_number(tolerance) or not math.isfinite(tolerance) or tolerance < 0:
            raise _fail(root, f"{where}.tolerance must be a finite number >= 0, got {tolerance!r}")
        reference = entry.get("reference_logits", [])
        if not isinstance(reference, list) or not all(_is_number(v) and math.isfinite(v) for v in reference):
            raise _fail(root, f"{where}.reference_logits must be a list of finite numbers")
        by_key[(fmt, precision)] = entry
    return by_key


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    raw = _read_manifest(root)
    try:
        manifest = parse_json(raw)
    except RefusedFileError as exc:
        raise _fail(root, f"{MANIFEST} {exc}") from None
    if not isinstance(manifest, dict):
        raise _fail(root, f"{MANIFEST} must hold a JSON object")
    if manifest.get("schema") not in (SCHEMA, SCHEMA_IN_MODEL):
        raise _fail(root, f"unknown schema {manifest.get('schema')!r}; this eyesdk reads {SCHEMA!r} and "
                          f"{SCHEMA_IN_MODEL!r}")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise _fail(root, f"{MANIFEST} lacks key(s) {', '.join(missing)}")

    # Checksums first: nothing below (nor any backend) may read a byte that was not verified.
    files = manifest["files"]
    if isinstance(files, dict) and MANIFEST in files:
        raise _fail(root, f"'files' lists {MANIFEST} itself; it cannot hold its own checksum")
    _check_files(root, files, manifest["artifacts"])
    _check_nothing_unlisted(root, files)

    if not isinstance(manifest["preprocess"], dict):
        raise _fail(root, "manifest key 'preprocess' must be an object (PreprocessContract.to_dict())")
    try:
        contract = PreprocessContract.from_dict(manifest["preprocess"])
    except (TypeError, ValueError) as exc:
        raise _fail(root, f"manifest key 'preprocess': {exc}") from exc
    if manifest["schema"] != schema_for(contract):
        raise _fail(root, f"schema {manifest['schema']!r} does not go with normalization_in_model="
                          f"{str(contract.normalization_in_model).lower()} (that is {schema_for(contract)!r})")
    if manifest["labels"] != LABELS:
        raise _fail(root, f"manifest key 'labels' is {manifest['labels']!r}; this eyesdk reads {LABELS!r}")
    output = manifest["output"]
    if not isinstance(output, dict) or any(output.get(key) != value for key, value in OUTPUT.items()):
        raise _fail(root, f"manifest key 'output' is {output!r}; this eyesdk reads {OUTPUT!r}")
    threshold = manifest["threshold"]
    if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
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


def _read_manifest(root: Path) -> bytes:
    path = root / MANIFEST
    if path.is_symlink():
        raise _fail(root, f"{MANIFEST} is a symlink; bundles must hold plain files")
    try:
        return read_regular(path, MAX_MANIFEST_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        raise _fail(root, f"has no {MANIFEST}; it is not an eyesdk bundle") from None
    except RefusedFileError as exc:
        raise _fail(root, f"{MANIFEST} {exc}") from None
    except OSError as exc:
        raise _fail(root, f"{MANIFEST} cannot be read: {exc}") from exc


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
