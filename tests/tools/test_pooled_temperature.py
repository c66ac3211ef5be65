"""tools/pooled_temperature.py: the pooled fit equals eyesdk.metrics.fit_temperature on the concatenated logits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from eyesdk.metrics import fit_temperature

TOOL = Path(__file__).resolve().parents[2] / "tools" / "pooled_temperature.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("pooled_temperature", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_runs_are_pooled_before_the_fit(tool, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i, scale in enumerate((1.0, 3.0)):  # two runs of different confidence: pooling differs from averaging
        y = rng.integers(0, 2, 500)
        z = scale * (2 * y - 1) + rng.normal(0, 1.5, 500)
        np.savez(tmp_path / f"run{i}.npz", test_logits=z, test_y=y, val_logits=z[:3], val_y=y[:3])
        paths.append(str(tmp_path / f"run{i}.npz"))
    both = [np.load(p) for p in paths]
    expected = fit_temperature(np.concatenate([b["test_logits"] for b in both]),
                               np.concatenate([b["test_y"] for b in both]))
    assert tool.pooled_temperature(paths) == (pytest.approx(expected), 1000)
    assert tool.main(paths) == 0
    assert f"pooled T {expected:.4f} from 1000 held-out crops of 2 run(s)" in capsys.readouterr().out
