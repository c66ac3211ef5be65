"""A backend that returns the wrong number of logits is an error, never a silent answer."""

from __future__ import annotations

import numpy as np
import pytest

from eyesdk.backends.base import one_logit_per_crop


def test_one_logit_per_crop_passes_through() -> None:
    out = np.zeros(3, np.float32)
    assert one_logit_per_crop(out, 3, "openvino") is out


@pytest.mark.parametrize("bad", [np.zeros(0, np.float32), np.zeros(2, np.float32), np.zeros((3, 1), np.float32)])
def test_wrong_output_shape_raises(bad: np.ndarray) -> None:
    with pytest.raises(RuntimeError, match=r"openvino returned \d+ values of shape .* for 3 crops; expected \(3,\)"):
        one_logit_per_crop(bad, 3, "openvino")
