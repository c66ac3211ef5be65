"""The locator protocol (``locate(frame) -> eyes``), the eye location value, and the one frame check.

A locator only says where the eyes are; how a crop is cut from that (square, centred, roll-corrected, at the scale
the classifier was trained on) is the crop recipe's job (``eyesdk.locators.crop``), the same for every locator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import FrameError

LEFT, RIGHT = "left", "right"  # as seen in the image
SIDES = (LEFT, RIGHT)
MIN_FRAME_SIDE = 16
MAX_FRAME_SIDE = 8192
FRAME_ACCEPTED = (
    "a numpy array H x W (grey), H x W x 1, H x W x 3 (BGR, as OpenCV delivers) or H x W x 4 (BGRA), dtype uint8, "
    f"sides {MIN_FRAME_SIDE}..{MAX_FRAME_SIDE}"
)


@dataclass(frozen=True, slots=True)
class EyeLocation:
    """One eye in a frame, in frame pixels.

    side: "left" / "right" as seen in the image. center: (x, y) of the eye's centre (between its corners).
    width: the eye's width, corner to corner. angle: roll in radians of the line from the image-left corner to the
    image-right corner (image y points down, so a positive angle means that line descends to the right).
    confidence: the locator's own certainty in [0, 1]. source: how it was found ("landmarks", "face-geometry",
    "fixed").
    """

    side: str
    center: tuple[float, float]
    width: float
    angle: float = 0.0
    confidence: float = 1.0
    source: str = ""


@runtime_checkable
class Locator(Protocol):
    """Finds the eyes of the main face in a frame: at most one eye per side; none when no face is found."""

    name: str

    def locate(self, frame: np.ndarray) -> tuple[EyeLocation, ...]: ...

    def reset(self) -> None:
        """Forget anything carried between frames (tracking state): the next frame is searched from scratch."""


def as_frame(frame: object) -> np.ndarray:
    """Validate a frame and return it as uint8 H x W (grey) or H x W x 3 (BGR), without copying when possible."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, got {type(frame).__name__}; accepted: {FRAME_ACCEPTED}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype {frame.dtype} is not supported; accepted: {FRAME_ACCEPTED}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    elif frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
        raise FrameError(f"frame has shape {frame.shape}; accepted: {FRAME_ACCEPTED}")
    h, w = frame.shape[:2]
    if min(h, w) < MIN_FRAME_SIDE or max(h, w) > MAX_FRAME_SIDE:
        raise FrameError(f"frame is {h}x{w} pixels; accepted: {FRAME_ACCEPTED}")
    return frame
