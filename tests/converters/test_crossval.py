"""Pooled out-of-fold temperature, leave-one-fold-out ECE, subject bootstrap, worst open recall."""

from __future__ import annotations

import numpy as np
import pytest

from eyesdk.converters.crossval import (
    bacc_of_logits,
    format_oof,
    leave_one_fold_out_temperatures,
    open_recall_by_subject,
    pooled_temperature,
    subject_bootstrap,
    summarize_oof,
)
from eyesdk.metrics import fit_temperature


def _oof(seed: int = 0, n_subjects: int = 12, per: int = 60):
    rng = np.random.default_rng(seed)
    subjects = np.repeat([f"s{i:02d}" for i in range(n_subjects)], per)
    y = rng.integers(0, 2, len(subjects))
    skill = np.repeat(rng.uniform(0.5, 3.0, n_subjects), per)  # some subjects are much harder
    logits = (2 * y - 1) * skill * 2.0 + rng.normal(0, 2.0, len(y))  # over-confident by a factor ~2
    folds = np.repeat(np.arange(n_subjects) % 4, per)
    sources = np.where(np.repeat(np.arange(n_subjects) < 8, per), "mrl", "cew")
    return logits, y, subjects, sources, folds


def test_pooled_and_leave_one_fold_out_temperatures() -> None:
    logits, y, _, _, folds = _oof()
    t = pooled_temperature(logits, y)
    assert t == pytest.approx(fit_temperature(logits, y))
    lofo = leave_one_fold_out_temperatures(logits, y, folds)
    assert sorted(lofo) == [0, 1, 2, 3]
    assert lofo[2] == pytest.approx(fit_temperature(logits[folds != 2], y[folds != 2]))
    with pytest.raises(ValueError, match="at least two folds"):
        leave_one_fold_out_temperatures(logits, y, np.zeros_like(folds))


def test_subject_bootstrap_is_wider_than_a_crop_bootstrap() -> None:
    logits, y, subjects, _, _ = _oof()
    lo, hi = subject_bootstrap(y, logits, subjects, bacc_of_logits, rounds=300)
    crop_lo, crop_hi = subject_bootstrap(y, logits, np.arange(len(y)).astype(str), bacc_of_logits, rounds=300)
    point = bacc_of_logits(y, logits)
    assert lo <= point <= hi
    assert hi - lo > 1.5 * (crop_hi - crop_lo)  # near-duplicate frames: subjects, not crops, are the unit


def test_subject_bootstrap_errors() -> None:
    logits, y, subjects, _, _ = _oof()
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        subject_bootstrap(y, logits, subjects, bacc_of_logits, rounds=0)
    with pytest.raises(ValueError, match="level must lie in"):
        subject_bootstrap(y, logits, subjects, bacc_of_logits, level=1.0)
    with pytest.raises(ValueError, match="held one class only"):
        subject_bootstrap(np.ones(4, int), np.ones(4), ["a", "a", "b", "b"], bacc_of_logits, rounds=5)


def test_open_recall_by_subject_lowest_first() -> None:
    y = np.array([1] * 30 + [1] * 30 + [1] * 5)
    logits = np.array([1.0] * 30 + [-1.0] * 15 + [1.0] * 15 + [-1.0] * 5)
    subjects = np.array(["a"] * 30 + ["b"] * 30 + ["c"] * 5)
    rows = open_recall_by_subject(y, logits, subjects)
    assert [(r["subject"], r["recall"]) for r in rows] == [("b", 0.5), ("a", 1.0)]  # c: too few open eyes


def test_summarize_oof_and_length_check() -> None:
    logits, y, subjects, sources, folds = _oof()
    summary = summarize_oof(logits, y, subjects, sources, folds, rounds=50)
    assert set(summary["per_source"]) == {"mrl", "cew"}
    assert summary["per_source"]["mrl"]["bacc_interval_95"][0] <= summary["per_source"]["mrl"]["pooled"]["bacc"]
    assert "pooled out-of-fold temperature" in format_oof(summary)
    with pytest.raises(ValueError, match="out-of-fold arrays disagree"):
        summarize_oof(logits, y[:-1], subjects, sources, folds)


def test_read_pooled_temperature(tmp_path) -> None:
    import json

    from eyesdk.converters.crossval import read_pooled_temperature

    good = tmp_path / "cv.json"
    good.write_text(json.dumps({"oof": {"pooled_temperature": 1.25}}))
    assert read_pooled_temperature(good) == 1.25
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"folds": [], "summary": {}}))
    with pytest.raises(ValueError, match="holds no pooled out-of-fold temperature"):
        read_pooled_temperature(old)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"oof": {"pooled_temperature": -1}}))
    with pytest.raises(ValueError, match="must be a positive number"):
        read_pooled_temperature(bad)
