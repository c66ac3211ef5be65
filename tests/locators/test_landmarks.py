"""The landmark locator (MediaPipe detector + face mesh on eyesdk's backends) on a real face and synthetic frames."""

from __future__ import annotations

import math

import numpy as np
import pytest
from face_reference import EYE_WIDTH, REFERENCE

from eyesdk.locators.blazeface import anchors, weighted_nms
from eyesdk.locators.errors import LocatorModelMissingError
from eyesdk.locators.landmarks import MediaPipeLocator
from eyesdk.locators.warp import sample, square_grid


def rotated(frame: np.ndarray, degrees: float, about: tuple[float, float]) -> np.ndarray:
    h, w = frame.shape[:2]
    side = max(h, w)
    xs, ys = square_grid(about[0], about[1], side, math.radians(degrees), side)
    return np.clip(np.rint(sample(frame, xs, ys)), 0, 255).astype(np.uint8)


def near(eye, point, tolerance: float) -> bool:
    return math.hypot(eye.center[0] - point[0], eye.center[1] - point[1]) <= tolerance


@pytest.fixture
def locator(locator_models) -> MediaPipeLocator:
    return MediaPipeLocator(models=locator_models)


def test_finds_both_eyes_of_a_real_face(locator, astronaut) -> None:
    eyes = locator.locate(astronaut)
    assert [e.side for e in eyes] == ["left", "right"]
    for eye in eyes:
        assert near(eye, REFERENCE[eye.side], 0.25 * EYE_WIDTH)
        assert eye.width == pytest.approx(EYE_WIDTH, rel=0.15)
        assert eye.confidence > 0.9 and eye.source == "landmarks"


def test_grey_and_rgb_frames(locator_models, astronaut) -> None:
    grey = astronaut.mean(axis=2).astype(np.uint8)
    for frame, color in ((grey, "bgr"), (astronaut[:, :, ::-1].copy(), "rgb")):
        eyes = MediaPipeLocator(models=locator_models, color=color).locate(frame)
        assert len(eyes) == 2 and all(near(e, REFERENCE[e.side], 0.3 * EYE_WIDTH) for e in eyes)


def test_tracking_runs_the_detector_only_when_needed(locator, camera_frame) -> None:
    first = locator.locate(camera_frame)
    moved = np.roll(camera_frame, 12, axis=1)
    second = locator.locate(moved)
    assert locator.detections == 1  # the second frame was tracked from the first one's landmarks
    assert second[0].center[0] - first[0].center[0] == pytest.approx(12, abs=3)
    assert locator.locate(np.zeros_like(camera_frame)) == ()  # the face is gone
    assert len(locator.locate(camera_frame)) == 2 and locator.detections >= 2  # found again from scratch


def test_without_tracking_every_frame_is_detected(locator_models, camera_frame) -> None:
    locator = MediaPipeLocator(models=locator_models, tracking=False)
    for _ in range(3):
        assert len(locator.locate(camera_frame)) == 2
    assert locator.detections == 3
    every = MediaPipeLocator(models=locator_models, redetect_every=2)
    for _ in range(5):
        every.locate(camera_frame)
    assert every.detections == 2


def test_roll_is_measured(locator_models, astronaut) -> None:
    centre = (226.0, 104.0)
    base = MediaPipeLocator(models=locator_models).locate(astronaut)
    tilted = MediaPipeLocator(models=locator_models).locate(rotated(astronaut, 20.0, centre))
    assert len(tilted) == 2
    for a, b in zip(base, tilted, strict=True):
        assert math.degrees(b.angle - a.angle) == pytest.approx(-20.0, abs=5.0)


def test_no_face_no_eyes(locator) -> None:
    rng = np.random.default_rng(0)
    assert locator.locate(np.full((480, 640, 3), 128, np.uint8)) == ()
    assert locator.locate(rng.integers(0, 255, (240, 320), dtype=np.uint8)) == ()


def test_openvino_runs_the_same_models(locator_models, astronaut) -> None:
    pytest.importorskip("openvino")
    lite = MediaPipeLocator(models=locator_models, backend="tflite").locate(astronaut)
    vino = MediaPipeLocator(models=locator_models, backend="openvino")
    assert vino.backend == "openvino"
    for a, b in zip(lite, vino.locate(astronaut), strict=True):
        assert math.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1]) < 0.5


def test_anchor_table_and_suppression() -> None:
    table = anchors()
    assert table.shape == (896, 2) and table.min() > 0 and table.max() < 1
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9]])
    scores = np.array([0.9, 0.6, 0.8])
    kept = weighted_nms(scores, boxes, np.zeros((3, 6, 2)))
    assert [round(s, 2) for s, _, _ in kept] == [0.9, 0.8]
    assert kept[0][1][0] == pytest.approx((0.1 * 0.9 + 0.12 * 0.6) / 1.5)  # a score-weighted mean


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"color": "hsv"}, r"color must be 'bgr' or 'rgb', got 'hsv'"),
        ({"min_presence": 1.0}, r"min_presence and min_detection must lie in \(0, 1\)"),
        ({"redetect_every": 0}, r"redetect_every must be a positive int or None, got 0"),
        ({"backend": "onnxruntime"}, r"locator models run on tflite or openvino \(or 'auto'\), not 'onnxruntime'"),
    ],
)
def test_bad_arguments(locator_models, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        MediaPipeLocator(models=locator_models, **kwargs)


def test_missing_models_say_how_to_fetch(tmp_path) -> None:
    with pytest.raises(LocatorModelMissingError, match=r"run `eyesdk models fetch-locator` once"):
        MediaPipeLocator(models=tmp_path)
