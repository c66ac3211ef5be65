"""MACs from torch's FLOP counter: the number the model card and manifests report."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from eyesdk.converters.flops import count_macs  # noqa: E402
from eyesdk.converters.model import build_model  # noqa: E402


def _by_hand(widths: tuple[int, ...], size: int) -> int:
    """3x3 convs (first at stride 1, then stride 2, padding 1) and the linear head, as written in model.py."""
    macs, side, c_in = 0, size, 1
    for i, c_out in enumerate(widths):
        side = side if i == 0 else (side + 1) // 2
        macs += 9 * c_in * c_out * side * side
        c_in = c_out
    return macs + widths[-1]


def test_shipped_model_counts_the_model_card_number() -> None:
    assert count_macs(build_model(), 24) == 311_088  # docs/model-card.md
    assert count_macs(build_model(), 32) == 553_008


@pytest.mark.parametrize("widths", [(4, 8), (6, 12, 24, 48), (8, 16, 32)])
@pytest.mark.parametrize("size", [24, 32])
def test_macs_match_the_layer_arithmetic(widths: tuple[int, ...], size: int) -> None:
    assert count_macs(build_model("bce", widths), size) == _by_hand(widths, size)


def test_counting_leaves_the_training_mode_alone() -> None:
    model = build_model("bce", (4, 8)).train()
    count_macs(model, 24)
    assert model.training
