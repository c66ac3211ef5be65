"""The crop recipe: how an eye location becomes the crop the classifier sees, the same for every locator.

Square, centred on the eye, rotated so the line through the eye corners is horizontal (when the locator measured a
roll), with a side of ``scale`` x the eye's corner-to-corner width. The default scale is the one the training crops
have: measured with MediaPipe's iris-landmark model on MRL crops (``eyesdk-bench crop-scale``, docs/stream.md).
Crops are sampled at the frame's own resolution up to ``max_side`` pixels, so the model's antialiased resize
(eyesdk.preprocess) does the downscaling, as it did in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..stream.errors import check_range
from .base import EyeLocation
from .warp import inside_fraction, sample, square_grid


@dataclass(frozen=True)
class CropRecipe:
    scale: float = 2.5  # crop side / eye width
    max_side: int = 64  # crops are sampled at native resolution up to this many pixels a side
    roll: bool = True  # rotate by the eye's measured roll

    def __post_init__(self) -> None:
        check_range("CropRecipe", "scale", self.scale, 0.5, 6.0)
        check_range("CropRecipe", "max_side", self.max_side, 8, 1024)


@dataclass(frozen=True)
class EyeCrop:
    """pixels: uint8 crop (grey or BGR like the frame); box: its axis-aligned bounds in the frame (x, y, w, h);
    side_px: the square's side in frame pixels; inside: fraction of the square inside the frame."""

    pixels: np.ndarray
    box: tuple[int, int, int, int]
    side_px: float
    inside: float


def crop_square(eye: EyeLocation, recipe: CropRecipe) -> tuple[float, float, float, float]:
    """(cx, cy, side, angle) of the crop square for an eye."""
    side = recipe.scale * eye.width
    return eye.center[0], eye.center[1], side, eye.angle if recipe.roll else 0.0


def bounding_box(cx: float, cy: float, side: float, angle: float) -> tuple[int, int, int, int]:
    """Axis-aligned integer bounds (x, y, w, h) of a rotated square."""
    half = 0.5 * side * (abs(math.cos(angle)) + abs(math.sin(angle)))
    x0, y0 = math.floor(cx - half), math.floor(cy - half)
    x1, y1 = math.ceil(cx + half), math.ceil(cy + half)
    return x0, y0, x1 - x0, y1 - y0


def crop_eye(frame: np.ndarray, eye: EyeLocation, recipe: CropRecipe | None = None) -> EyeCrop:
    """Cut one eye's crop out of a validated frame (``as_frame``), border replicated where it sticks out."""
    recipe = recipe or CropRecipe()
    cx, cy, side, angle = crop_square(eye, recipe)
    out = int(min(max(round(side), 8), recipe.max_side))
    xs, ys = square_grid(cx, cy, side, angle, out)
    h, w = frame.shape[:2]
    inside = inside_fraction(xs, ys, w, h)
    pixels = sample(frame, xs, ys)
    np.rint(pixels, out=pixels)
    return EyeCrop(pixels.astype(np.uint8), bounding_box(cx, cy, side, angle), side, inside)
