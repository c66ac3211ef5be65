"""Locator fixtures: real face images from registry packages, the fetched landmark models (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from face_paths import astronaut_frame, locator_models_or_skip, skimage_image


@pytest.fixture(scope="session")
def locator_models() -> Path:
    return locator_models_or_skip()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut.png (Eileen Collins, public domain), 512 x 512, as a BGR frame."""
    return skimage_image("astronaut.png")


@pytest.fixture(scope="session")
def camera_frame() -> np.ndarray:
    return astronaut_frame()
