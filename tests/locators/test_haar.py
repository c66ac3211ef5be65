"""The Haar fallback locator on a real face and synthetic frames; without OpenCV it says what to install."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from face_reference import EYE_WIDTH, REFERENCE

from eyesdk.errors import BackendUnavailableError

pytest.importorskip("cv2")

from eyesdk.locators.haar import HaarLocator  # noqa: E402


def test_finds_the_face_and_places_the_eyes(astronaut) -> None:
    locator = HaarLocator()
    faces = locator.faces(astronaut)
    assert len(faces) == 1
    eyes = locator.locate(astronaut)
    assert [e.side for e in eyes] == ["left", "right"]
    for eye in eyes:
        ref = REFERENCE[eye.side]
        assert math.hypot(eye.center[0] - ref[0], eye.center[1] - ref[1]) < 0.5 * EYE_WIDTH
        assert eye.width == pytest.approx(EYE_WIDTH, rel=0.3) and eye.source == "face-geometry"


def test_grey_frames_and_no_face(astronaut) -> None:
    locator = HaarLocator()
    assert len(locator.locate(astronaut.mean(axis=2).astype(np.uint8))) == 2
    assert locator.locate(np.full((240, 320, 3), 90, np.uint8)) == ()


def test_without_opencv_it_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(BackendUnavailableError, match=r"the Haar locator needs OpenCV .*eyesdk\[stream\]"):
        HaarLocator()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"color": "yuv"}, r"color must be 'bgr' or 'rgb'"), ({"min_face": 5}, r"min_face must be >= 20")],
)
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        HaarLocator(**kwargs)


def test_opencv_without_cascades(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(__version__="5.0.0"))
    with pytest.raises(BackendUnavailableError, match=r"OpenCV 5.0.0 has no Haar cascades \(OpenCV 5 dropped them\)"):
        HaarLocator()


def test_missing_or_unreadable_cascade_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import cv2

    from eyesdk.locators import haar
    from eyesdk.locators.errors import LocatorModelMissingError

    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    monkeypatch.setattr(haar, "Path", lambda p: tmp_path / "nowhere" if p.startswith("/usr") else type(tmp_path)(p))
    with pytest.raises(LocatorModelMissingError, match=r"no haarcascade_frontalface_default.xml in"):
        HaarLocator()
    monkeypatch.undo()

    class Empty:
        def __init__(self, _path):
            pass

        def empty(self):
            return True

    monkeypatch.setattr(cv2, "CascadeClassifier", Empty)
    with pytest.raises(LocatorModelMissingError, match=r"OpenCV could not load .*haarcascade_frontalface_default.xml"):
        HaarLocator()
