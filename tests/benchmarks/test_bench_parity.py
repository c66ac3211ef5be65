"""Device parity of one artifact on the bundle's probe (benchmarks/parity.py): the distance, not only a verdict."""

from __future__ import annotations

import numpy as np
import pytest

from eyesdk.benchmarks import parity


def test_probe_parity_reports_the_distance() -> None:
    probe = np.zeros((3, 1, 32, 32), np.float32)
    artifact = {"reference_logits": [0.0, 1.0, 2.0], "tolerance": 0.01}
    ok = parity.probe_parity(lambda x: np.array([0.0, 1.005, 2.0]), artifact, probe)
    assert ok == {"max_abs_diff": pytest.approx(0.005), "tolerance": 0.01, "ok": True}
    bad = parity.probe_parity(lambda x: np.array([0.0, 1.5, 2.0]), artifact, probe)
    assert bad["ok"] is False and bad["max_abs_diff"] == pytest.approx(0.5)
    broken = parity.probe_parity(lambda x: np.array([np.nan, 1.0, 2.0]), artifact, probe)
    assert broken == {"max_abs_diff": None, "tolerance": 0.01, "ok": False}
    assert parity.probe_parity(lambda x: x, {"tolerance": 1.0}, probe)["ok"] is None  # nothing to compare
    default = parity.probe_parity(lambda x: np.array([0.0, 1.0, 2.0]), {"reference_logits": [0, 1, 2]}, probe)
    assert default["tolerance"] == parity.DEFAULT_TOLERANCE
