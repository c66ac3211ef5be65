"""The crop-quality gate: crops the classifier should not be asked about are ``unknown`` with a reason.

Checked in order, cheapest first: too small (the eye spans too few frame pixels), off frame (too much of the crop
square lies outside the frame), under/over-exposed (mean grey level), low contrast (nearly uniform: a covered lens,
an eye lost in shadow), glare (a large saturated area: glasses reflecting a light), blurred (too little local
detail at the model's input size, i.e. measured on what the model sees). The default limits were set from the
distribution of these statistics over all real MRL and CEW training crops, so that each rejects well under 1 % of
them (``eyesdk-bench gate`` prints both the distribution and the rejection rates, docs/stream.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import check_range

TOO_SMALL, OFF_FRAME, UNDEREXPOSED, OVEREXPOSED = "too_small", "off_frame", "underexposed", "overexposed"
LOW_CONTRAST, GLARE, BLURRED = "low_contrast", "glare", "blurred"
REASONS = (TOO_SMALL, OFF_FRAME, UNDEREXPOSED, OVEREXPOSED, LOW_CONTRAST, GLARE, BLURRED)


@dataclass(frozen=True)
class QualityConfig:
    enabled: bool = True
    min_side: float = 16.0  # crop side in frame pixels
    min_inside: float = 0.85  # fraction of the crop square inside the frame
    min_mean: float = 12.0  # mean grey level (0..255)
    max_mean: float = 235.0
    min_std: float = 4.0  # grey-level standard deviation of the crop
    max_saturated: float = 0.25  # fraction of pixels at >= 250
    min_detail: float = 0.04  # fine detail (detail_of) at the model's input size

    def __post_init__(self) -> None:
        check_range("QualityConfig", "min_side", self.min_side, 0.0)
        check_range("QualityConfig", "min_inside", self.min_inside, 0.0, 1.0)
        check_range("QualityConfig", "min_mean", self.min_mean, 0.0, 255.0)
        check_range("QualityConfig", "max_mean", self.max_mean, self.min_mean, 255.0)
        check_range("QualityConfig", "min_std", self.min_std, 0.0, 128.0)
        check_range("QualityConfig", "max_saturated", self.max_saturated, 0.0, 1.0)
        check_range("QualityConfig", "min_detail", self.min_detail, 0.0, 4.0)


@dataclass(frozen=True, slots=True)
class CropStats:
    """The statistics the gate judges; ``crop_stats`` computes them, benchmarks print their distribution."""

    mean: float
    std: float
    saturated: float
    detail: float


def _mean_std(pixels: np.ndarray) -> tuple[float, float]:
    flat = pixels.ravel()
    n = flat.size
    mean = float(flat.sum()) / n
    return mean, math.sqrt(max(float(np.dot(flat, flat)) / n - mean * mean, 0.0))


def detail_of(resized: np.ndarray) -> float:
    """Fine detail left at the model's input size: the spread of the crop minus its 3 x 3 local mean, relative to the
    crop's own spread. It falls like 1 / blur^2 once blur exceeds a pixel at that size, and does not depend on
    brightness or contrast (sharp real eye crops: ~0.2-0.5)."""
    h, w = resized.shape
    local = (resized[:-2, :-2] + resized[:-2, 1:-1] + resized[:-2, 2:] + resized[1:-1, :-2] + resized[1:-1, 1:-1]
             + resized[1:-1, 2:] + resized[2:, :-2] + resized[2:, 1:-1] + resized[2:, 2:]) * np.float32(1.0 / 9.0)
    high = resized[1:-1, 1:-1] - local
    return _mean_std(high)[1] / max(_mean_std(resized)[1], 1e-3)


def crop_stats(grey: np.ndarray, resized: np.ndarray) -> CropStats:
    """grey: the crop as float grey 0..255 at its own size; resized: the same at the model's input size."""
    mean, std = _mean_std(grey)
    saturated = float(np.count_nonzero(grey >= 250.0)) / grey.size
    return CropStats(mean, std, saturated, detail_of(resized))


def judge(stats: CropStats, side_px: float, inside: float, config: QualityConfig) -> str | None:
    """The first reason this crop is unusable, or None when it passes."""
    if not config.enabled:
        return None
    if side_px < config.min_side:
        return TOO_SMALL
    if inside < config.min_inside:
        return OFF_FRAME
    if stats.mean < config.min_mean:
        return UNDEREXPOSED
    if stats.mean > config.max_mean:
        return OVEREXPOSED
    if stats.std < config.min_std:
        return LOW_CONTRAST
    if stats.saturated > config.max_saturated:
        return GLARE
    if stats.detail < config.min_detail:
        return BLURRED
    return None
