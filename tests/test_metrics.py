"""eyesdk.metrics against hand-computed cases and against scikit-learn / scipy (test-only references)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as sk

from eyesdk import metrics as m

SEEDS = [0, 1, 2]


def _random_case(seed: int, n: int = 400, temperature: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.3, 2.0, n)
    y = (rng.random(n) < m.sigmoid(z / temperature)).astype(int)
    return y, z


# ------------------------------------------------------------------------------------------------ sigmoid


def test_sigmoid_is_stable_at_extremes_and_matches_the_textbook_formula() -> None:
    with np.errstate(over="raise", under="ignore"):
        p = m.sigmoid([-1e4, -800.0, 0.0, 800.0, 1e4])
    np.testing.assert_array_equal(p, [0.0, 0.0, 0.5, 1.0, 1.0])
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(m.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(m.sigmoid(z) + m.sigmoid(-z), 1.0)


def test_predict_open_decides_at_the_threshold_inclusive() -> None:
    np.testing.assert_array_equal(m.predict_open([-1.0, 0.0, 1.0]), [0, 1, 1])
    # T does not move decisions at 0.5 but does at other thresholds.
    np.testing.assert_array_equal(m.predict_open([1.0], temperature=0.5, threshold=0.8), [1])
    np.testing.assert_array_equal(m.predict_open([1.0], temperature=1.0, threshold=0.8), [0])


# ---------------------------------------------------------------------------------------------- decisions

Y_HAND = [0, 0, 1, 1, 1]
PRED_HAND = [0, 1, 1, 1, 0]  # tn=1 fp=1 fn=1 tp=2


def test_decision_metrics_on_a_hand_computed_example() -> None:
    np.testing.assert_array_equal(m.confusion(Y_HAND, PRED_HAND), [[1, 1], [1, 2]])
    assert m.accuracy(Y_HAND, PRED_HAND) == pytest.approx(3 / 5)
    assert m.balanced_accuracy(Y_HAND, PRED_HAND) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert m.f1_score(Y_HAND, PRED_HAND) == pytest.approx(2 / 3)


def test_degenerate_decisions_follow_sklearn_zero_division_0() -> None:
    assert m.f1_score([0, 0, 0], [0, 0, 0]) == 0.0
    assert m.f1_score([0, 0], [1, 1]) == 0.0
    assert m.balanced_accuracy([1, 1], [1, 0]) == 0.5  # only the present class counts
    assert m.accuracy([True, False], [1, 0]) == 1.0  # booleans are labels too


@pytest.mark.parametrize("seed", SEEDS)
def test_decision_metrics_match_sklearn(seed: int) -> None:
    y, z = _random_case(seed)
    pred = m.predict_open(z)
    assert m.accuracy(y, pred) == pytest.approx(sk.accuracy_score(y, pred))
    assert m.balanced_accuracy(y, pred) == pytest.approx(sk.balanced_accuracy_score(y, pred))
    assert m.f1_score(y, pred) == pytest.approx(sk.f1_score(y, pred, zero_division=0))
    np.testing.assert_array_equal(m.confusion(y, pred), sk.confusion_matrix(y, pred, labels=[0, 1]))


def test_roc_auc_hand_examples_and_ties() -> None:
    assert m.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert m.roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert m.roc_auc([0, 0, 1], [1.0, 2.0, 2.0]) == pytest.approx(0.75)
    assert math.isnan(m.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_sklearn_with_many_ties(seed: int) -> None:
    y, z = _random_case(seed)
    scores = np.round(z)  # heavy ties
    assert m.roc_auc(y, scores) == pytest.approx(sk.roc_auc_score(y, scores), abs=1e-12)
    assert m.roc_auc(y, z) == pytest.approx(sk.roc_auc_score(y, z), abs=1e-12)


# -------------------------------------------------------------------------------------------- calibration


def test_calibration_errors_on_hand_computed_bins() -> None:
    # bins=2: [0, 0.5) holds p=0.2 (y=0); [0.5, 1] holds p=0.9, 0.9, 0.7 (all y=1).
    y, p = [1, 1, 1, 0], [0.9, 0.9, 0.7, 0.2]
    high_gap, low_gap = 1.0 - (0.9 + 0.9 + 0.7) / 3, 0.2
    assert m.expected_calibration_error(y, p, bins=2) == pytest.approx((3 * high_gap + low_gap) / 4)
    assert m.max_calibration_error(y, p, bins=2) == pytest.approx(0.2)


def test_calibration_is_positive_class_not_top_label() -> None:
    # Top-label ECE would see confidence 0.9 and accuracy 1.0 in both bins; positive-class sees p=0.1 vs 0.
    y, p = [0, 1], [0.1, 0.9]
    assert m.expected_calibration_error(y, p, bins=10) == pytest.approx(0.1)


def test_reliability_bins_layout_edges_and_empty_bins() -> None:
    table = m.reliability_bins([0, 1, 1, 1], [0.0, 0.5, 0.75, 1.0], bins=4)
    np.testing.assert_allclose(table["edges"], [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(table["counts"], [1, 0, 1, 2])  # left-closed; 1.0 joins the last bin
    np.testing.assert_allclose(table["confidence"], [0.0, np.nan, 0.5, 0.875])
    np.testing.assert_allclose(table["frequency"], [0.0, np.nan, 1.0, 1.0])


def test_ece_is_small_for_calibrated_probabilities() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert m.expected_calibration_error(y, p) < 0.02
    assert m.expected_calibration_error(y, 0.5 * p + 0.5) > 0.2


@pytest.mark.parametrize("seed", SEEDS)
def test_brier_and_log_loss_match_sklearn(seed: int) -> None:
    y, z = _random_case(seed)
    p = m.sigmoid(z)
    assert m.brier_score(y, p) == pytest.approx(sk.brier_score_loss(y, p))
    assert m.log_loss(y, p) == pytest.approx(sk.log_loss(y, p, labels=[0, 1]))


def test_log_loss_clips_confident_misses_to_a_finite_cost() -> None:
    assert m.log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))
    assert math.isfinite(m.log_loss([0], [1.0]))
    assert m.log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------------- temperature


def test_fit_temperature_recovers_the_true_temperature_and_lowers_ece() -> None:
    t_true = 2.5
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 4.0, 20000)
    y = (rng.random(z.size) < m.sigmoid(z / t_true)).astype(int)
    t = m.fit_temperature(z, y)
    assert abs(t - t_true) < 0.15
    assert m.expected_calibration_error(y, m.sigmoid(z / t)) < m.expected_calibration_error(y, m.sigmoid(z))


def test_fit_temperature_is_the_nll_minimum() -> None:
    y, z = _random_case(4, n=2000)
    t = m.fit_temperature(z, y)
    nll = m.binary_report(y, z, temperature=t)["nll"]
    for other in (t * 1.01, t / 1.01):
        assert m.binary_report(y, z, temperature=other)["nll"] > nll


def test_fit_temperature_degenerate_cases() -> None:
    assert m.fit_temperature([1.0, 2.0], [1, 1]) == 1.0  # one class: unidentifiable
    assert m.fit_temperature([0.0, 0.0], [0, 1]) == 1.0  # zero logits: unidentifiable
    assert m.fit_temperature([-1.0, 1.0], [0, 1]) == m.TEMPERATURE_BOUNDS[0]  # separable: sharpen fully
    assert m.fit_temperature([1.0, -1.0], [0, 1]) == m.TEMPERATURE_BOUNDS[1]  # anti-correlated: flatten


# ------------------------------------------------------------------------------------------ separability


def test_ks_distance_hand_examples() -> None:
    assert m.ks_distance([1, 2, 3], [4, 5]) == 1.0
    assert m.ks_distance([1, 2, 3], [1, 2, 3]) == 0.0
    assert m.ks_distance([1, 1, 2], [1, 2, 2]) == pytest.approx(1 / 3)  # ties counted with <=
    assert math.isnan(m.ks_distance([], [1.0]))


@pytest.mark.parametrize("seed", SEEDS)
def test_ks_distance_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(0.0, 1.0, 150), 1)
    b = np.round(rng.normal(0.4, 1.3, 97), 1)
    assert m.ks_distance(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    assert m.ks_distance(a, b) == m.ks_distance(b, a)
    assert m.ks_distance(m.sigmoid(a), m.sigmoid(b)) == m.ks_distance(a, b)  # monotone-invariant


def test_fisher_ratio_hand_example_1d() -> None:
    # closed [0, 2]: mean 1, var 1; open [4, 6]: mean 5, var 1 -> 16 / 2
    assert m.fisher_ratio([0.0, 2.0, 4.0, 6.0], [0, 0, 1, 1]) == pytest.approx(8.0)


def test_fisher_ratio_1d_and_nd_agree() -> None:
    y, z = _random_case(5)
    one_d = m.fisher_ratio(z, y)
    assert m.fisher_ratio(z[:, None], y) == pytest.approx(one_d)
    assert m.fisher_ratio(np.stack([z, z, z], axis=1), y) == pytest.approx(one_d)  # duplicated axes cancel
    assert one_d == pytest.approx((z[y == 1].mean() - z[y == 0].mean()) ** 2 / (z[y == 1].var() + z[y == 0].var()))


def test_fisher_ratio_nd_formula_and_its_scatter_matrix_form() -> None:
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1], 100)
    x = rng.normal(size=(200, 5)) * [1, 2, 3, 1, 1] + np.outer(y, [1, 0, 2, 0, 0])
    pos, neg = x[y == 1], x[y == 0]
    expected = np.sum((pos.mean(0) - neg.mean(0)) ** 2) / (
        np.trace(np.cov(pos.T, ddof=0)) + np.trace(np.cov(neg.T, ddof=0))
    )
    assert m.fisher_ratio(x, y) == pytest.approx(expected)
    mu = x.mean(0)
    s_b = sum(len(c) * np.outer(c.mean(0) - mu, c.mean(0) - mu) for c in (pos, neg))
    s_w = sum((c - c.mean(0)).T @ (c - c.mean(0)) for c in (pos, neg))
    assert m.fisher_ratio(x, y) == pytest.approx(2 * np.trace(s_b) / np.trace(s_w))  # balanced classes


def test_fisher_ratio_degenerate_cases() -> None:
    assert math.isnan(m.fisher_ratio([1.0, 2.0], [1, 1]))
    assert m.fisher_ratio([0.0, 0.0, 3.0, 3.0], [0, 0, 1, 1]) == math.inf
    assert math.isnan(m.fisher_ratio([3.0, 3.0], [0, 1]))


def test_intra_inter_distance_hand_example() -> None:
    # closed [0, 2]: 2; open [10, 13, 16]: mean(3, 6, 3) = 4 -> intra = (2 + 4) / 2
    # inter: |0-10|, 13, 16, |2-10|, 11, 14 -> 72 / 6
    intra, inter = m.intra_inter_distance([0.0, 2.0, 10.0, 13.0, 16.0], [0, 0, 1, 1, 1])
    assert intra == pytest.approx(3.0)
    assert inter == pytest.approx(12.0)


def test_intra_inter_distance_matches_brute_force_in_nd() -> None:
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    same, upper = y[:, None] == y[None], np.triu(np.ones((40, 40), bool), k=1)
    per_class = [d[upper & same & (y[:, None] == k)].mean() for k in (0, 1)]
    intra, inter = m.intra_inter_distance(x, y)
    assert intra == pytest.approx(np.mean(per_class))
    assert inter == pytest.approx(d[~same].mean())


def test_intra_inter_distance_subsamples_deterministically() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(3000, 4)), rng.integers(0, 2, 3000)
    first = m.intra_inter_distance(x, y, max_points=500, seed=1)
    assert first == m.intra_inter_distance(x, y, max_points=500, seed=1)
    full = m.intra_inter_distance(x, y, max_points=3000)
    assert first == pytest.approx(full, rel=0.05)


def test_intra_inter_distance_undefined_parts_are_nan() -> None:
    intra, inter = m.intra_inter_distance([1.0, 2.0], [1, 1])
    assert intra == 1.0 and math.isnan(inter)
    intra, inter = m.intra_inter_distance([1.0, 2.0], [0, 1])
    assert math.isnan(intra) and inter == 1.0


# ------------------------------------------------------------------------------------------------ reports

REPORT_KEYS = {"acc", "bacc", "f1", "auc", "ece", "mce", "brier", "nll", "ks", "fisher", "n", "n_pos"}


def test_binary_report_agrees_with_the_single_metrics_and_is_json_ready() -> None:
    y, z = _random_case(10)
    t = 1.7
    report = m.binary_report(y, z, temperature=t)
    assert set(report) == REPORT_KEYS
    assert all(type(v) is float for k, v in report.items() if k not in ("n", "n_pos"))
    assert type(report["n"]) is int and type(report["n_pos"]) is int
    json.dumps(report)
    p = m.sigmoid(z / t)
    assert report["acc"] == m.accuracy(y, m.predict_open(z, t))
    assert report["auc"] == pytest.approx(sk.roc_auc_score(y, z))
    assert report["ece"] == m.expected_calibration_error(y, p)
    assert report["nll"] == pytest.approx(sk.log_loss(y, p))
    assert report["ks"] == m.ks_distance(z[y == 1], z[y == 0])
    assert report["fisher"] == m.fisher_ratio(z, y)
    assert (report["n"], report["n_pos"]) == (len(y), int(y.sum()))


def test_binary_report_on_one_class_keeps_undefined_values_as_nan() -> None:
    report = m.binary_report([1, 1, 1], [0.5, 2.0, -1.0])
    assert report["acc"] == pytest.approx(2 / 3)
    assert all(math.isnan(report[k]) for k in ("auc", "ks", "fisher"))
    assert "NaN" in json.dumps(report)


def test_drift_report_hand_example() -> None:
    y, ref, art = [0, 1, 1], [-1.0, 1.0, 2.0], [1.0, 1.0, 2.5]
    report = m.drift_report(y, ref, art)
    assert report["flip_rate"] == pytest.approx(1 / 3)
    assert report["agreement"] == pytest.approx(2 / 3)
    assert report["acc_pp"] == pytest.approx(-100 / 3)
    assert report["f1_pp"] == pytest.approx(100 * (0.8 - 1.0))
    assert report["max_abs_dlogit"] == 2.0
    assert report["mean_abs_dlogit"] == pytest.approx(2.5 / 3)
    dprob = np.abs(m.sigmoid(art) - m.sigmoid(ref)).mean()
    assert report["mean_abs_dprob"] == pytest.approx(dprob)
    json.dumps(report)


def test_drift_report_without_labels_and_with_own_temperatures() -> None:
    z = np.array([-2.0, 0.5, 3.0])
    report = m.drift_report(None, z, 2 * z, t_ref=1.0, t=2.0)
    assert "acc_pp" not in report and "f1_pp" not in report
    assert report["flip_rate"] == 0.0 and report["mean_abs_dprob"] == pytest.approx(0.0, abs=1e-15)
    assert report["max_abs_dlogit"] == 3.0


# ------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: m.accuracy([0, 1, 1], [0, 1]), r"y has 3 entries but pred has 2"),
        (lambda: m.roc_auc([0, 1], [0.1, 0.2, 0.3]), r"y has 2 entries but scores has 3"),
        (lambda: m.brier_score([0, 1], [0.1]), r"y has 2 entries but p has 1"),
        (lambda: m.fit_temperature([0.1], [0, 1]), r"logits has 1 entries but y has 2"),
        (lambda: m.fisher_ratio(np.zeros((3, 2)), [0, 1]), r"features has 3 entries but y has 2"),
        (lambda: m.intra_inter_distance(np.zeros((3, 2)), [0, 1]), r"embeddings has 3 entries but y has 2"),
        (lambda: m.drift_report(None, [0.1, 0.2], [0.1]), r"ref_logits has 2 entries but logits has 1"),
        (lambda: m.drift_report([0, 1, 1], [0.1, 0.2], [0.1, 0.2]), r"y has 3 entries but logits has 2"),
        (lambda: m.binary_report([0, 1], [0.1]), r"y has 2 entries but logits has 1"),
    ],
)
def test_mismatched_lengths_name_both(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: m.accuracy([0, 2], [0, 1]), r"y must contain only 0 \(closed\) and 1 \(open\); found \[2\]"),
        (lambda: m.accuracy([0, 1], [0, -1]), r"pred must contain only 0 \(closed\) and 1 \(open\)"),
        (lambda: m.accuracy(["open", "closed"], [0, 1]), r"y must be numeric 0/1 labels; got dtype <U6"),
        (lambda: m.accuracy([], []), r"y is empty; metrics need at least one sample"),
        (lambda: m.accuracy([[0, 1]], [[0, 1]]), r"y must be 1-D \(one label per sample\); got shape \(1, 2\)"),
        (lambda: m.roc_auc([0, 1], [0.1, np.nan]), r"scores contains NaN or infinite values"),
        (lambda: m.fit_temperature([np.inf, 0.0], [0, 1]), r"logits contains NaN or infinite values"),
        (lambda: m.roc_auc([0, 1], [[0.1, 0.2]]), r"scores must have 1 dimension\(s\); got shape \(1, 2\)"),
        (lambda: m.fisher_ratio(np.zeros((2, 2, 2)), [0, 1]), r"features must have 1 or 2 dimension\(s\)"),
        (lambda: m.brier_score([0, 1], [0.1, 1.5]), r"p must be probabilities in \[0, 1\]; got range \[0.1, 1.5\]"),
        (lambda: m.expected_calibration_error([0], [0.1], bins=0), r"bins must be a positive integer; got 0"),
        (lambda: m.reliability_bins([0], [0.1], bins=2.5), r"bins must be a positive integer; got 2.5"),
        (lambda: m.log_loss([0], [0.1], eps=0.0), r"eps must lie in \(0, 0.5\); got 0.0"),
        (lambda: m.predict_open([0.1], temperature=0.0), r"temperature must be a finite number > 0; got 0.0"),
        (lambda: m.binary_report([0], [0.1], temperature=-1.0), r"temperature must be a finite number > 0"),
        (lambda: m.predict_open([0.1], threshold=1.5), r"threshold is a probability .* \[0, 1\]; got 1.5"),
        (lambda: m.drift_report(None, [0.1], [0.1], t_ref=math.inf), r"t_ref must be a finite number > 0"),
        (lambda: m.drift_report(None, [0.1], [0.1], t=0.0), r"t must be a finite number > 0; got 0.0"),
        (lambda: m.drift_report(None, [], []), r"logits are empty; drift needs at least one sample"),
        (lambda: m.intra_inter_distance([0.0, 1.0], [0, 1], max_points=1), r"max_points must be an integer >= 2"),
    ],
)
def test_bad_inputs_say_what_is_allowed(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
