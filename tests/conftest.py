"""Shared test helpers: where the real data lives (tests using it skip without it) and a synthetic eye."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import synthetic_eye

__all__ = ["SHARED_DATA", "shared_data", "synthetic_eye"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets folder (../shared/data next to the repository); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA
