"""Choosing a locator: auto walks the table and says why; missing runtimes and files are named errors."""

from __future__ import annotations

import logging
import types

import pytest

import eyesdk.locators as locators
import eyesdk.stream as stream_package
from eyesdk.errors import BackendUnavailableError
from eyesdk.locators.errors import LocatorModelMissingError


def test_auto_falls_back_and_says_why(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    built = []

    def build(name: str, color: str):
        if name == "mediapipe":
            raise LocatorModelMissingError("the face_detector model is not in the cache")
        built.append(name)
        return types.SimpleNamespace(name=name, locate=lambda frame: (), reset=lambda: None)

    monkeypatch.setattr(locators, "_build", build)
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        chosen = locators.make_locator("auto")
    assert chosen.name == "haar" and built == ["haar"]
    assert "locator 'auto' uses haar (mediapipe: the face_detector model is not in the cache)" in caplog.text


def test_auto_with_nothing_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(name: str, color: str):
        raise BackendUnavailableError(f"{name} cannot run")

    monkeypatch.setattr(locators, "_build", build)
    with pytest.raises(LocatorModelMissingError, match=r"no eye locator can run here: mediapipe: mediapipe cannot run "
                                                       r"\| haar: haar cannot run"):
        locators.make_locator("auto")


def test_no_tflite_nor_openvino(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from eyesdk.locators import runner

    monkeypatch.setattr(runner.backends, "is_available", lambda name: False)
    with pytest.raises(BackendUnavailableError, match=r"the landmark locator needs the tflite or openvino backend"):
        runner.TfliteModel(tmp_path / "x.tflite")


def test_lazy_packages_name_what_they_lack() -> None:
    with pytest.raises(AttributeError, match=r"module 'eyesdk.locators' has no attribute 'Nope'"):
        locators.Nope  # noqa: B018
    with pytest.raises(AttributeError, match=r"module 'eyesdk.stream' has no attribute 'Nope'"):
        stream_package.Nope  # noqa: B018
    assert "EyeStream" in dir(stream_package)
