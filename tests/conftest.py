"""Shared test helpers: real data (skipped without it), a synthetic eye, the tiny bundle, a private tune cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic import synthetic_eye

__all__ = ["SHARED_DATA", "private_cache", "shared_data", "synthetic_eye", "tiny_bundle"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "registry: installs from the package index with pip (CI runs it; deselect "
                                       "offline with -m 'not registry')")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets folder (../shared/data next to the repository); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All nine artifacts of a tiny real model, built once per session (copy it before damaging it)."""
    from runtime_helpers import tiny_bundle_path

    return tiny_bundle_path(tmp_path_factory)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test may read or write the user's tuning cache."""
    monkeypatch.setenv("EYESDK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
