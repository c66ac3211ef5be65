"""Metric plumbing of the benchmark (benchmarks/accuracy.py).

The formulas themselves are tested in tests/test_metrics.py; here we check that each bench key carries the metric it
names, with the right temperature and threshold, against hand-computed values and scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from eyesdk.benchmarks import accuracy

# Hand example: y = closed, closed, open, open; logits -2, 1, 0.5, 3 with T = 1 and threshold 0.5.
# Decisions 0, 1, 1, 1 -> acc 3/4; recall closed 1/2, open 1 -> bacc 3/4; tp 2, fp 1, fn 0 -> F1 4/5;
# AUC: pairs (0.5 > -2, 0.5 < 1, 3 > -2, 3 > 1) -> 3/4; KS: open CDF vs closed CDF max gap 1/2.
Y = np.array([0, 0, 1, 1])
Z = np.array([-2.0, 1.0, 0.5, 3.0])


def test_score_matches_hand_computed_values() -> None:
    out = accuracy.score(Y, Z, temperature=1.0, threshold=0.5)
    assert out["accuracy"] == pytest.approx({"acc": 0.75, "bacc": 0.75, "f1": 0.8, "auc": 0.75})
    p = 1 / (1 + np.exp(-Z))
    assert out["calibration"]["brier"] == pytest.approx(np.mean((p - Y) ** 2))
    assert out["calibration"]["nll"] == pytest.approx(-np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p)))
    assert out["separation"]["ks"] == pytest.approx(0.5)
    # Fisher on the logits: (mean_open - mean_closed)^2 / (var_open + var_closed) = (1.75 + 0.5)^2 / (1.5625 + 2.25)
    assert out["separation"]["fisher"] == pytest.approx(2.25**2 / (1.5625 + 2.25))


def test_score_uses_the_artifact_temperature_for_calibration_only() -> None:
    cold = accuracy.score(Y, Z, temperature=1.0)
    hot = accuracy.score(Y, Z, temperature=3.0)
    assert hot["accuracy"] == cold["accuracy"]  # scaling by T moves no decision at threshold 0.5 and no ranking
    p = 1 / (1 + np.exp(-Z / 3.0))
    assert hot["calibration"]["brier"] == pytest.approx(np.mean((p - Y) ** 2))


def test_score_agrees_with_scikit_learn() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    z = rng.normal(size=500) + 1.5 * (2 * y - 1)
    t, threshold = 1.7, 0.4
    out = accuracy.score(y, z, t, threshold)
    p = 1 / (1 + np.exp(-z / t))
    pred = (p >= threshold).astype(int)
    assert out["accuracy"]["acc"] == pytest.approx(sk.accuracy_score(y, pred))
    assert out["accuracy"]["bacc"] == pytest.approx(sk.balanced_accuracy_score(y, pred))
    assert out["accuracy"]["f1"] == pytest.approx(sk.f1_score(y, pred))
    assert out["accuracy"]["auc"] == pytest.approx(sk.roc_auc_score(y, z))
    assert out["calibration"]["brier"] == pytest.approx(sk.brier_score_loss(y, p))
    assert out["calibration"]["nll"] == pytest.approx(sk.log_loss(y, p), rel=1e-6)


def test_separation_ks_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    z = rng.normal(size=300) + y
    expected = stats.ks_2samp(z[y == 1], z[y == 0]).statistic
    assert accuracy.score(y, z)["separation"]["ks"] == pytest.approx(expected)


def test_reliability_plot_data_matches_the_ece() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    z = rng.normal(size=400) * 2
    out = accuracy.score(y, z)
    rel = out["plots"]["reliability"]
    counts = np.array(rel["counts"])
    filled = counts > 0
    gaps = np.abs(np.array(rel["frequency"], dtype=float)[filled] - np.array(rel["confidence"], dtype=float)[filled])
    assert counts.sum() == 400 and len(rel["edges"]) == accuracy.RELIABILITY_BINS + 1
    assert np.sum(gaps * counts[filled]) / 400 == pytest.approx(out["calibration"]["ece"])
    assert all(v is None for v, c in zip(rel["confidence"], counts, strict=True) if c == 0)  # empty bins: no point


def test_histogram_counts_each_class_once() -> None:
    p = np.array([0.0, 0.04, 0.5, 0.97, 1.0, 0.2])
    y = np.array([0, 0, 1, 1, 1, 0])
    hist = accuracy.histogram(y, p, bins=10)
    assert hist["closed"] == [2, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert hist["open"] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_drift_against_reference_in_percentage_points() -> None:
    ref = np.array([-2.0, -1.0, 1.0, 2.0])  # all four right
    art = np.array([-2.0, 0.5, 1.0, -0.1])  # two flipped: one now wrong closed->open, one open->closed
    y = np.array([0, 0, 1, 1])
    out = accuracy.drift(y, ref, art, 1.0, 1.0, 0.5, "onnxruntime fp32")
    assert out["reference"] == "onnxruntime fp32"
    assert out["acc_pp"] == pytest.approx(-50.0)
    assert out["flip_rate"] == pytest.approx(0.5)
    assert out["f1_pp"] == pytest.approx(100 * (0.5 - 1.0))  # tp 1, fp 1, fn 1 -> F1 1/2
    assert out["max_abs_dlogit"] == pytest.approx(2.1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert out["mean_abs_dprob"] == pytest.approx(np.mean(np.abs(sig(art) - sig(ref))))


def test_one_class_slice_gives_none_not_nan() -> None:
    out = accuracy.score(np.array([1, 1, 1]), np.array([0.3, 2.0, -1.0]))
    assert out["accuracy"]["auc"] is None and out["separation"]["ks"] is None
    assert out["accuracy"]["acc"] == pytest.approx(2 / 3)


@dataclass
class FakeSample:
    source: str
    attrs: dict[str, str] = field(default_factory=dict)


def test_attribute_slices_skip_identifiers_and_keep_sources() -> None:
    samples = [FakeSample("mrl", {"glasses": "yes", "image_id": "1"}), FakeSample("mrl", {"glasses": "no",
               "image_id": "2"}), FakeSample("cew", {"side": "L"}), FakeSample("cew", {"side": "R"})]
    samples += [FakeSample("cew", {"name": f"n{i}"}) for i in range(13)]  # 13 distinct values: an identifier
    slices = accuracy.attribute_slices(samples)
    assert list(slices) == ["source=cew", "source=mrl", "glasses=no", "glasses=yes", "side=L", "side=R"]
    assert slices["glasses=yes"].tolist()[:2] == [True, False] and slices["source=cew"].sum() == 15


def test_breakdown_rows_are_binary_reports_of_each_slice() -> None:
    slices = {"a": np.array([True, True, False, False]), "empty": np.zeros(4, bool), "b": np.array([0, 0, 1, 1], bool)}
    rows = accuracy.breakdown(slices, Y, Z, 1.0, 0.5)
    assert [r["slice"] for r in rows] == ["a", "b"]
    assert rows[0] == {"slice": "a", "n": 2, "n_open": 0, "acc": 0.5, "bacc": 0.5, "f1": 0.0, "auc": None,
                       "ece": pytest.approx(abs(0.5 * (1 / (1 + math.exp(2)) + 1 / (1 + math.exp(-1)))))}
    assert rows[1]["acc"] == 1.0 and rows[1]["n_open"] == 2


def test_logits_from_probabilities_round_trip_and_saturate() -> None:
    p = np.array([0.1, 0.5, 0.9])
    z = accuracy.logits_from_probabilities(p)
    assert 1 / (1 + np.exp(-z)) == pytest.approx(p)
    assert np.isfinite(accuracy.logits_from_probabilities(np.array([0.0, 1.0]))).all()
