"""Fixtures shared by the converter tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny():
    """The tiny EyeNet of eyesdk.converters.testing, trained in about a second on drawn eyes."""
    pytest.importorskip("torch")
    import torch

    from eyesdk.converters.testing import train_tiny_model

    torch.set_num_threads(1)
    return train_tiny_model(0)
