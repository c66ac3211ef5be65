"""Draw weights: source weights times attribute-cell weights."""

from __future__ import annotations

import numpy as np
import pytest

from eyesdk.converters.sampling import parse_cell, sampling_weights


def test_source_weights_only() -> None:
    w = sampling_weights(["mrl", "mrl", "cew"], {"cew": 4.0})
    assert np.allclose(w, np.array([1, 1, 4]) / 6)


def test_cells_multiply_matching_crops() -> None:
    attrs = [{"glasses": "yes", "reflections": "big"}, {"glasses": "yes", "reflections": "none"},
             {"glasses": "no", "reflections": "big"}, {}]
    y = np.array([1, 1, 0, 1])
    w = sampling_weights(["mrl", "mrl", "mrl", "cew"], {}, attrs,
                         {"glasses=yes,label=open": 3.0, "reflections=big": 2.0, "source=cew": 5.0}, y)
    assert np.allclose(w, np.array([6, 3, 2, 5]) / 16)


def test_parse_cell() -> None:
    assert parse_cell(" glasses=yes , label=open ") == {"glasses": "yes", "label": "open"}
    for bad in ("", "glasses", "glasses=", "=yes", "a=b=c"):
        with pytest.raises(ValueError, match="bad sampling cell"):
            parse_cell(bad)


def test_cells_need_attributes_and_labels() -> None:
    with pytest.raises(ValueError, match="cell weights need the attributes and label of every crop"):
        sampling_weights(["mrl"], {}, None, {"glasses=yes": 2.0}, [1])
    with pytest.raises(ValueError, match="weights must be numbers > 0"):
        sampling_weights(["mrl"], {}, [{"glasses": "yes"}], {"glasses=yes": 0.0}, [1])
    with pytest.raises(ValueError, match="every crop has draw weight 0"):
        sampling_weights(["mrl"], {"mrl": 0.0})
