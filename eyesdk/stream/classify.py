"""Eye crops -> calibrated logits through the public ``EyeState`` and the one preprocessing path.

The stream needs the crop at the model's input size twice, for the quality gate's blur measure and for the model,
so it runs the contract's two preprocessing steps itself (``resize_grey``, then ``standardize_step``: standardize
unless the artifact does it in its graph) and hands the batch to ``EyeState.logits``: one backend call for both eyes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..api import EyeState
from ..preprocess import MIN_SIDE, resize_grey, standardize_step, to_grey


class CropClassifier:
    """Wraps an ``EyeState``: its bundle's contract, temperature and threshold become the stream's units."""

    def __init__(self, eye_state: EyeState) -> None:
        self.eye_state = eye_state
        self._contract = eye_state.bundle.contract
        self._size = self._contract.size
        self._finish = standardize_step(self._contract)  # standardize, unless the artifact does it itself
        self._inv_t = 1.0 / eye_state.temperature
        threshold = eye_state.threshold
        # The bundle's decision rule sigmoid(z / T) >= threshold, as a calibrated logit: the prior midpoint.
        self.midpoint = math.log(threshold / (1.0 - threshold))

    def prepare(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(grey at its own size, grey at the model's size), or None for a crop too small to classify."""
        if min(crop.shape[:2]) < MIN_SIDE:
            return None
        grey = to_grey(crop, self.eye_state.color)
        return grey, resize_grey(grey, self._size)

    def logits(self, resized: Sequence[np.ndarray]) -> list[float]:
        """Calibrated logits (raw logit / temperature) of crops already at the model's size."""
        if not resized:
            return []
        size = self._size
        batch = self._finish(np.stack(resized)).reshape(len(resized), 1, size, size)
        z = self.eye_state.logits(batch)
        return [float(v) * self._inv_t for v in z]

