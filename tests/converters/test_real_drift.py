"""Real-data drift of the shipped bundle: every artifact against its backend's fp32 on unseen-by-training crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import eyesdk
from eyesdk.bundle import default_bundle_path, load_bundle
from eyesdk.formats import BACKEND_FORMAT, GATES
from eyesdk.metrics import drift_report

pytestmark = pytest.mark.real_data
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validation_crops(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """An evenly spaced sample of the shipped model's validation fold, through the bundle's own contract."""
    from eyesdk.converters.datasets import load_crops, read_sources
    from eyesdk.converters.splits import assign_from_folds

    bundle = load_bundle(default_bundle_path())
    samples = read_sources([shared_data / "mrlEyes_2018_01", shared_data / "cew"])
    folds = np.asarray(assign_from_folds(samples, ROOT / "folds" / "shared-data-5fold.json"))
    val_fold = bundle.manifest["training"]["val_fold"]
    chosen = [s for s, f in zip(samples, folds, strict=True) if f == val_fold][::8]
    loaded = load_crops(chosen, bundle.contract, progress=False)
    return loaded.x[:, None].astype(np.float32), loaded.y.astype(np.int64)


@pytest.mark.parametrize("backend", sorted(BACKEND_FORMAT))
def test_every_artifact_stays_within_its_drift_gate(backend: str, validation_crops) -> None:
    if backend not in eyesdk.available_backends():
        pytest.skip(f"{backend} is not installed here")
    x, y = validation_crops
    reference = eyesdk.EyeState(backend=backend, precision="fp32")
    z_ref = reference.logits(x)
    assert (np.asarray(z_ref >= 0, int) == y).mean() > 0.93  # the model is the real one, not a stand-in
    for precision in ("fp16", "int8"):
        es = eyesdk.EyeState(backend=backend, precision=precision)
        drift = drift_report(y, z_ref, es.logits(x), reference.temperature, es.temperature)
        # one crop is 1/len(y) of accuracy: allow the gate plus one flipped crop on this 1/8 sample
        allowed = GATES[precision].drift_pp + 100.0 / len(y)
        assert abs(drift["acc_pp"]) <= allowed, (precision, drift)
        assert drift["flip_rate"] < 0.01, (precision, drift)
