"""The fixed-region locator: for cameras that always see the eye(s) at a known place (eye trackers, head-mounted
cameras, a driver camera on a fixed mount). Nothing is detected; the regions are checked once, up front."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .base import SIDES, EyeLocation, as_frame
from .crop import CropRecipe
from .errors import FrameError

Box = tuple[float, float, float, float]  # x, y, width, height of the CROP in frame pixels


class FixedRegionLocator:
    """Eyes at fixed places: ``{"left": (x, y, w, h), "right": (...)}`` in frame pixels, each the square crop the
    classifier should see (a non-square box is centred and squared on its longer side). One side is enough."""

    name = "fixed"

    def __init__(self, regions: Mapping[str, Box], recipe: CropRecipe | None = None, angle: float = 0.0) -> None:
        recipe = recipe or CropRecipe()
        if not isinstance(regions, Mapping) or not regions:
            raise ValueError(f"regions must be a non-empty mapping of side -> (x, y, w, h), got {regions!r}")
        unknown = [side for side in regions if side not in SIDES]
        if unknown:
            raise ValueError(f"unknown side(s) {unknown}; sides are {', '.join(SIDES)}")
        eyes = []
        for side, box in regions.items():
            try:
                x, y, w, h = (float(v) for v in box)
            except (TypeError, ValueError):
                raise ValueError(f"region {side!r} must be four numbers (x, y, w, h), got {box!r}") from None
            if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
                raise ValueError(f"region {side!r} = {box!r} needs finite x, y and a positive width and height")
            side_px = max(w, h)
            eyes.append(EyeLocation(side, (x + w / 2, y + h / 2), side_px / recipe.scale, angle, 1.0, "fixed"))
        self.eyes = tuple(sorted(eyes, key=lambda e: SIDES.index(e.side)))

    def locate(self, frame: np.ndarray) -> tuple[EyeLocation, ...]:
        frame = as_frame(frame)
        h, w = frame.shape[:2]
        for eye in self.eyes:
            if not (0 <= eye.center[0] < w and 0 <= eye.center[1] < h):
                raise FrameError(
                    f"the fixed {eye.side} eye region is centred at {eye.center}, outside this {h}x{w} frame"
                )
        return self.eyes

    def reset(self) -> None:
        """Nothing is carried between frames."""
