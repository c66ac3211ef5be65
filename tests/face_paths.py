"""Real face images from registry packages and the fetched landmark models, for locator and stream tests."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# scripts/test runs `eyesdk models fetch-locator --dir .cache/locator-models --iris` before pytest
LOCATOR_MODELS = Path(os.environ.get("EYESDK_TEST_LOCATOR_MODELS", ROOT / ".cache" / "locator-models"))


def locator_models_or_skip() -> Path:
    from eyesdk.locators import models

    missing = models.missing(root=LOCATOR_MODELS)
    if missing:
        pytest.skip(f"locator models {missing} not in {LOCATOR_MODELS}: run `eyesdk models fetch-locator --dir "
                    f"{LOCATOR_MODELS} --iris` (scripts/test does; it needs the package index)")
    return LOCATOR_MODELS


def skimage_image(name: str) -> np.ndarray:
    """An image shipped inside the scikit-image wheel, as a BGR frame (as OpenCV delivers)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-image is not installed (it comes with the dev extra)")
    from PIL import Image

    path = Path(spec.origin).parent / "data" / name
    return np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1].copy()


def astronaut_frame() -> np.ndarray:
    """scikit-image's astronaut.png (Eileen Collins, public domain) centred in a 640 x 480 camera-sized frame."""
    frame = np.full((480, 640, 3), 40, np.uint8)
    frame[:, 64:576] = skimage_image("astronaut.png")[16:496]
    return frame
