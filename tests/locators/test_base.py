"""The frame check, the warp, the crop recipe and the fixed-region locator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eyesdk.locators import FixedRegionLocator, FrameError, Locator, make_locator
from eyesdk.locators.base import EyeLocation, as_frame
from eyesdk.locators.crop import CropRecipe, bounding_box, crop_eye
from eyesdk.locators.warp import inside_fraction, sample, square_grid
from eyesdk.stream.errors import StreamConfigError


def test_as_frame_accepts_grey_bgr_and_bgra_without_copying() -> None:
    grey = np.zeros((20, 30), np.uint8)
    assert as_frame(grey) is grey
    assert as_frame(np.zeros((20, 30, 1), np.uint8)).shape == (20, 30)
    bgra = np.zeros((20, 30, 4), np.uint8)
    assert as_frame(bgra).shape == (20, 30, 3) and np.shares_memory(as_frame(bgra), bgra)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("frame.png", r"a frame must be a numpy array, got str"),
        (np.zeros((20, 30), np.float32), r"frame dtype float32 is not supported"),
        (np.zeros((20, 30, 2), np.uint8), r"frame has shape \(20, 30, 2\)"),
        (np.zeros((8, 30), np.uint8), r"frame is 8x30 pixels"),
        (np.zeros((2, 20, 30), np.uint8), r"frame has shape \(2, 20, 30\)"),
    ],
)
def test_bad_frames_are_named_errors(frame, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        as_frame(frame)


def test_sampling_reads_pixel_centres_exactly() -> None:
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    xs, ys = square_grid(5.0, 5.0, 4.0, 0.0, 4)  # pixel centres 3.5, 4.5, 5.5, 6.5
    assert np.allclose(sample(image, xs, ys), image[3:7, 3:7])
    assert np.allclose(sample(image, xs, ys, bilinear=False), image[3:7, 3:7])
    assert inside_fraction(xs, ys, 10, 10) == 1.0
    xs, ys = square_grid(0.0, 5.0, 4.0, 0.0, 4)
    assert inside_fraction(xs, ys, 10, 10) == 0.5


def test_the_crop_is_rotated_so_the_eye_corners_are_level() -> None:
    frame = np.full((200, 200), 200, np.uint8)
    angle = math.radians(20)
    for t in np.linspace(-30, 30, 400):  # a dark line through (100, 100) at 20 degrees
        x, y = 100 + t * math.cos(angle), 100 + t * math.sin(angle)
        frame[int(round(y)) - 1: int(round(y)) + 2, int(round(x)) - 1: int(round(x)) + 2] = 0
    eye = EyeLocation("left", (100.0, 100.0), 30.0, angle)
    crop = crop_eye(frame, eye, CropRecipe(scale=2.0, max_side=64)).pixels
    rows = crop.astype(float).mean(axis=1)
    assert crop.shape == (60, 60)
    assert np.argmin(rows) in (29, 30)  # the line is now horizontal through the middle
    upright = crop_eye(frame, eye, CropRecipe(scale=2.0, roll=False)).pixels
    assert upright.astype(float).mean(axis=1).min() > rows.min() + 40


def test_crops_are_capped_and_report_what_lies_outside() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    crop = crop_eye(frame, EyeLocation("left", (0.0, 50.0), 40.0), CropRecipe(scale=2.5, max_side=64))
    assert crop.pixels.shape == (64, 64, 3) and crop.side_px == 100.0
    assert crop.inside == pytest.approx(0.5, abs=0.02)
    assert bounding_box(50, 50, 10, 0.0) == (45, 45, 10, 10)
    assert bounding_box(50, 50, 10, math.pi / 4)[2] in (15, 16)  # 10 * sqrt(2), whole pixels


def test_bad_recipes_are_refused() -> None:
    with pytest.raises(StreamConfigError, match=r"CropRecipe.scale = 0.1 is out of range"):
        CropRecipe(scale=0.1)


def test_the_fixed_locator_returns_its_regions() -> None:
    locator = FixedRegionLocator({"right": (100, 10, 40, 30), "left": (10, 10, 40, 40)})
    assert isinstance(locator, Locator) and make_locator(locator) is locator
    eyes = locator.locate(np.zeros((120, 160), np.uint8))
    assert [e.side for e in eyes] == ["left", "right"]
    assert eyes[1].center == (120.0, 25.0)
    crop = crop_eye(np.zeros((120, 160), np.uint8), eyes[1])
    assert crop.side_px == pytest.approx(40.0)  # squared on the longer side
    with pytest.raises(FrameError, match=r"the fixed right eye region is centred at \(120.0, 25.0\), outside"):
        locator.locate(np.zeros((60, 80), np.uint8))


@pytest.mark.parametrize(
    ("regions", "match"),
    [
        ({}, r"regions must be a non-empty mapping"),
        ({"middle": (0, 0, 10, 10)}, r"unknown side\(s\) \['middle'\]"),
        ({"left": (0, 0, 10)}, r"region 'left' must be four numbers"),
        ({"left": (0, 0, -1, 10)}, r"needs finite x, y and a positive width and height"),
    ],
)
def test_bad_regions_are_refused(regions, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FixedRegionLocator(regions)


def test_make_locator_refuses_what_it_cannot_build() -> None:
    with pytest.raises(ValueError, match=r"unknown locator 'dlib'; choose 'auto', 'mediapipe', 'haar'"):
        make_locator("dlib")
    with pytest.raises(TypeError, match=r"locator must be a name, a Locator .* got int"):
        make_locator(3)
