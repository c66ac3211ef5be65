"""Metrics, calibration and separability shared by training, export validation and benchmarks.

The converters (training, evaluation, export validation) and the benchmarks import this module; the edge runtime
(``eyesdk.api`` and what it loads) does not. Numpy only, so the benchmarks run on a runtime-only install without
torch, scipy or scikit-learn. Every function takes the model's single "open" logit (or the probability derived
from it):

* ``y``: labels, 0 = closed, 1 = open (the positive class everywhere, including F1 and AUC);
* ``z``: raw logits; ``p = sigmoid(z / T)`` is the calibrated probability of "open";
* a decision is ``p >= threshold`` (see :func:`predict_open`), the one rule every caller uses.

Degenerate cases follow scikit-learn (``zero_division=0``); a metric that needs both classes returns NaN
when one is missing instead of raising, so a report on a one-class slice still comes out whole.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "binary_report",
    "brier_score",
    "confusion",
    "drift_report",
    "expected_calibration_error",
    "f1_score",
    "fisher_ratio",
    "fit_temperature",
    "intra_inter_distance",
    "ks_distance",
    "log_loss",
    "max_calibration_error",
    "predict_open",
    "reliability_bins",
    "roc_auc",
    "sigmoid",
]

#: Search interval of :func:`fit_temperature`; landing on an end means the logits are (anti-)separable.
TEMPERATURE_BOUNDS = (0.05, 20.0)


# --------------------------------------------------------------------------------------------- validation


def _as_labels(y: ArrayLike, name: str = "y") -> NDArray[np.int64]:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric 0/1 labels; got dtype {arr.dtype}")
    bad = np.setdiff1d(np.unique(arr), [0, 1])
    if bad.size:
        raise ValueError(f"{name} must contain only 0 (closed) and 1 (open); found {bad[:5].tolist()}")
    return arr.astype(np.int64)


def _as_finite(x: ArrayLike, name: str, ndim: tuple[int, ...] = (1,)) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim not in ndim:
        allowed = " or ".join(map(str, ndim))
        raise ValueError(f"{name} must have {allowed} dimension(s); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; all entries must be finite")
    return arr


def _as_probs(p: ArrayLike, name: str = "p") -> NDArray[np.float64]:
    arr = _as_finite(p, name)
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"{name} must be probabilities in [0, 1]; got range [{arr.min():g}, {arr.max():g}]")
    return arr


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} entries but {name_b} has {len(b)}; they must match")


def _check_bins(bins: int) -> None:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins!r}")


def _check_temperature(t: float, name: str = "temperature") -> None:
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {t!r}")


def _check_threshold(threshold: float) -> None:
    if not (0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold is a probability and must lie in [0, 1]; got {threshold!r}")


# ------------------------------------------------------------------------------------------ probabilities


def sigmoid(z: ArrayLike) -> NDArray[np.float64]:
    """Logistic function that never overflows: ``exp`` only ever sees ``-|z|``."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _mean_nll_of_logits(z: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    # -log sigmoid(z) for y=1 and -log(1 - sigmoid(z)) for y=0, exact in logit space (no clipping needed).
    return float(np.mean(_softplus(z) - y * z))


def predict_open(logits: ArrayLike, temperature: float = 1.0, threshold: float = 0.5) -> NDArray[np.int64]:
    """The one decision rule, ``sigmoid(z / T) >= threshold`` -> 1 (open), so reports match the runtime."""
    _check_temperature(temperature)
    _check_threshold(threshold)
    z = _as_finite(logits, "logits")
    return (sigmoid(z / temperature) >= threshold).astype(np.int64)


# -------------------------------------------------------------------------------------------- decisions


def confusion(y: ArrayLike, pred: ArrayLike) -> NDArray[np.int64]:
    """2x2 counts laid out like scikit-learn (rows truth, columns decision): ``[[tn, fp], [fn, tp]]``."""
    y, pred = _as_labels(y), _as_labels(pred, "pred")
    _check_same_length(y, pred, "y", "pred")
    return np.bincount(2 * y + pred, minlength=4).reshape(2, 2)


def accuracy(y: ArrayLike, pred: ArrayLike) -> float:
    """Fraction of correct decisions; misleading alone when one eye state dominates a dataset."""
    (tn, fp), (fn, tp) = confusion(y, pred)
    return float((tn + tp) / (tn + fp + fn + tp))


def balanced_accuracy(y: ArrayLike, pred: ArrayLike) -> float:
    """Mean recall over the classes present in ``y``, so an open-heavy set cannot flatter the model.

    A class absent from ``y`` has no recall and is left out (scikit-learn does the same, with a warning).
    """
    (tn, fp), (fn, tp) = confusion(y, pred)
    recalls = [hit / total for hit, total in ((tn, tn + fp), (tp, tp + fn)) if total > 0]
    return float(np.mean(recalls))


def f1_score(y: ArrayLike, pred: ArrayLike) -> float:
    """F1 of the "open" class, ``2tp / (2tp + fp + fn)``; 0.0 when no sample is open in truth or decision."""
    (_, fp), (fn, tp) = confusion(y, pred)
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def _average_ranks(x: NDArray[np.float64]) -> NDArray[np.float64]:
    # 1-based ranks; tied values share the mean of the ranks they occupy.
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse.reshape(-1)]


def roc_auc(y: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count half); NaN if a class is missing.

    Threshold-free, so it judges the logit ordering independently of temperature and decision threshold.
    """
    y = _as_labels(y)
    s = _as_finite(scores, "scores")
    _check_same_length(y, s, "y", "scores")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = float(_average_ranks(s)[y == 1].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


# ------------------------------------------------------------------------------------------ calibration


def reliability_bins(y: ArrayLike, p: ArrayLike, bins: int = 15) -> dict[str, NDArray[Any]]:
    """Per-bin statistics for a reliability diagram of P(open).

    Bins are ``bins`` equal-width intervals of ``p`` over [0, 1], closed on the left (the last one also holds
    1.0). Returns ``edges`` (bins + 1), ``confidence`` (mean p), ``frequency`` (fraction open) and ``counts``;
    empty bins have NaN confidence and frequency so a plot shows a gap instead of a fake point.
    """
    _check_bins(bins)
    y, p = _as_labels(y), _as_probs(p)
    _check_same_length(y, p, "y", "p")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], p, side="right")
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=p, minlength=bins) / counts
        frequency = np.bincount(index, weights=y.astype(np.float64), minlength=bins) / counts
    return {"edges": edges, "confidence": confidence, "frequency": frequency, "counts": counts}


def _calibration_gaps(y: ArrayLike, p: ArrayLike, bins: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    table = reliability_bins(y, p, bins)
    filled = table["counts"] > 0
    gaps = np.abs(table["frequency"][filled] - table["confidence"][filled])
    return gaps, table["counts"][filled]


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 15) -> float:
    """Count-weighted mean of ``|fraction open - mean P(open)|`` over equal-width bins of P(open).

    This is the binary positive-class reliability formulation, not the top-label one: bins run over the
    probability of "open" on [0, 1] (not over max(p, 1 - p) on [0.5, 1]), matching :func:`reliability_bins`.
    """
    gaps, counts = _calibration_gaps(y, p, bins)
    return float(np.sum(gaps * counts) / np.sum(counts))


def max_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 15) -> float:
    """Worst non-empty bin of the same positive-class reliability table as :func:`expected_calibration_error`.

    Sensitive to sparsely filled bins, so read it together with ``reliability_bins(...)["counts"]``.
    """
    gaps, _ = _calibration_gaps(y, p, bins)
    return float(gaps.max())


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared error of P(open): rewards calibration and sharpness at once, bounded in [0, 1]."""
    y, p = _as_labels(y), _as_probs(p)
    _check_same_length(y, p, "y", "p")
    return float(np.mean((p - y) ** 2))


def log_loss(y: ArrayLike, p: ArrayLike, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the labels; ``p`` is clipped to ``[eps, 1 - eps]`` so a confident miss
    costs a large finite amount instead of infinity. From logits, :func:`binary_report` computes it exactly.
    """
    y, p = _as_labels(y), _as_probs(p)
    _check_same_length(y, p, "y", "p")
    if not (0.0 < eps < 0.5):
        raise ValueError(f"eps must lie in (0, 0.5); got {eps!r}")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(logits: ArrayLike, y: ArrayLike) -> float:
    """Temperature ``T`` minimising the NLL of ``sigmoid(z / T)`` on held-out logits (Guo et al., 2017).

    Scaling by ``T`` never changes a decision at threshold 0.5 or the AUC; it only makes P(open) honest.
    The NLL is convex in the inverse temperature ``a = 1 / T`` (its second derivative is
    ``mean(sigmoid'(a z) z^2) >= 0``), so a safeguarded Newton search on the derivative, bracketed to
    ``T`` in :data:`TEMPERATURE_BOUNDS`, finds the global minimum without tuning. Returns 1.0 when a class is
    missing or all logits are zero (``T`` is then unidentifiable); returns a bound when the optimum lies
    beyond it (e.g. 0.05 for perfectly separated logits).
    """
    z = _as_finite(logits, "logits")
    y = _as_labels(y)
    _check_same_length(z, y, "logits", "y")
    if y.min() == y.max() or not np.any(z):
        return 1.0

    def slope_and_curvature(a: float) -> tuple[float, float]:
        q = sigmoid(a * z)
        return float(np.mean((q - y) * z)), float(np.mean(q * (1.0 - q) * z * z))

    t_min, t_max = TEMPERATURE_BOUNDS
    lo, hi = 1.0 / t_max, 1.0 / t_min
    if slope_and_curvature(lo)[0] >= 0.0:
        return t_max
    if slope_and_curvature(hi)[0] <= 0.0:
        return t_min
    a = 1.0
    for _ in range(100):
        slope, curvature = slope_and_curvature(a)
        if slope == 0.0:
            break
        if slope > 0.0:
            hi = a
        else:
            lo = a
        step = a - slope / curvature if curvature > 0.0 else math.nan
        a_next = step if lo < step < hi else 0.5 * (lo + hi)
        if abs(a_next - a) <= 1e-12 * a or hi - lo <= 1e-12 * hi:
            a = a_next
            break
        a = a_next
    return float(1.0 / a)


# ----------------------------------------------------------------------------------------- separability


def ks_distance(scores_pos: ArrayLike, scores_neg: ArrayLike) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs (in [0, 1]).

    Evaluated exactly at every observed value, with ties resolved by counting ``<=``, like
    ``scipy.stats.ks_2samp``. Invariant under monotone maps, so logits and probabilities give the same value.
    NaN if either sample is empty.
    """
    pos = np.sort(_as_finite(scores_pos, "scores_pos"))
    neg = np.sort(_as_finite(scores_neg, "scores_neg"))
    if pos.size == 0 or neg.size == 0:
        return math.nan
    grid = np.concatenate([pos, neg])
    cdf_pos = np.searchsorted(pos, grid, side="right") / pos.size
    cdf_neg = np.searchsorted(neg, grid, side="right") / neg.size
    return float(np.max(np.abs(cdf_pos - cdf_neg)))


def _split_features(features: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = _as_finite(features, "features", ndim=(1, 2))
    y = _as_labels(y)
    _check_same_length(x, y, "features", "y")
    x = x.reshape(len(x), -1)
    return x[y == 1], x[y == 0]


def fisher_ratio(features: ArrayLike, y: ArrayLike) -> float:
    """Squared distance between the class means over the summed within-class spread.

    ``||mu1 - mu0||^2 / (tr Sigma1 + tr Sigma0)`` with population (``ddof=0``) covariances; for 1-D scores it
    is exactly ``(mu1 - mu0)^2 / (var1 + var0)``, so logits and embeddings share one scale. With the usual
    scatter matrices (``S_b = sum_k n_k (mu_k - mu)(mu_k - mu)^T``, ``S_w = sum_k sum_i (x_i - mu_k)(...)^T``)
    it equals ``2 tr(S_b) / tr(S_w)`` on balanced classes; unlike that form it weights both classes equally,
    so the open/closed ratio of a dataset does not move it. Above 1, the means are further apart than the
    classes are wide.
    NaN if a class is missing or nothing varies at all; inf if each class is a single repeated point.
    """
    pos, neg = _split_features(features, y)
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    between = float(np.sum((pos.mean(axis=0) - neg.mean(axis=0)) ** 2))
    within = float(np.sum(pos.var(axis=0)) + np.sum(neg.var(axis=0)))
    if within == 0.0:
        return math.inf if between > 0.0 else math.nan
    return between / within


def _pairwise_distances(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    squared = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _mean_within(x: NDArray[np.float64]) -> float:
    if len(x) < 2:
        return math.nan
    upper = np.triu_indices(len(x), k=1)
    return float(_pairwise_distances(x, x)[upper].mean())


def intra_inter_distance(
    embeddings: ArrayLike, y: ArrayLike, max_points: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Mean Euclidean distance between samples of the same class vs of different classes.

    ``intra`` averages the two per-class means over distinct pairs (each class weighted equally, so the
    majority class cannot hide a diffuse minority); ``inter`` is the mean over all open/closed pairs.
    Above ``max_points`` samples a fixed uniform subsample (``seed``) is used, keeping the cost
    O(max_points^2) and the result reproducible. A value is NaN when it has no pair to average.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 2:
        raise ValueError(f"max_points must be an integer >= 2; got {max_points!r}")
    x = _as_finite(embeddings, "embeddings", ndim=(1, 2))
    labels = _as_labels(y)
    _check_same_length(x, labels, "embeddings", "y")
    x = x.reshape(len(x), -1)
    if len(x) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=max_points, replace=False))
        x, labels = x[keep], labels[keep]
    x = x - x.mean(axis=0)  # distances are shift-invariant; centring keeps the Gram trick precise
    pos, neg = x[labels == 1], x[labels == 0]
    within = [d for d in (_mean_within(pos), _mean_within(neg)) if not math.isnan(d)]
    intra = float(np.mean(within)) if within else math.nan
    inter = float(_pairwise_distances(pos, neg).mean()) if len(pos) and len(neg) else math.nan
    return intra, inter


# ---------------------------------------------------------------------------------------------- reports


def binary_report(
    y: ArrayLike, logits: ArrayLike, temperature: float = 1.0, threshold: float = 0.5
) -> dict[str, float | int]:
    """Every headline number for one set of logits, as plain ``float``/``int`` ready for ``json.dump``.

    Probabilities are ``sigmoid(z / temperature)``; decisions use :func:`predict_open`. ``nll`` is computed in
    logit space (exact, no clipping). ``ks`` and ``fisher`` are measured on the raw logits (both are
    scale-free). Values undefined on a one-class set (auc, ks, fisher) are NaN (``json`` writes ``NaN``).
    """
    y = _as_labels(y)
    z = _as_finite(logits, "logits")
    _check_same_length(y, z, "y", "logits")
    pred = predict_open(z, temperature, threshold)
    p = sigmoid(z / temperature)
    return {
        "acc": accuracy(y, pred),
        "bacc": balanced_accuracy(y, pred),
        "f1": f1_score(y, pred),
        "auc": roc_auc(y, z),
        "ece": expected_calibration_error(y, p),
        "mce": max_calibration_error(y, p),
        "brier": brier_score(y, p),
        "nll": _mean_nll_of_logits(z / temperature, y),
        "ks": ks_distance(z[y == 1], z[y == 0]),
        "fisher": fisher_ratio(z, y),
        "n": int(len(y)),
        "n_pos": int(y.sum()),
    }


def drift_report(
    y: ArrayLike | None,
    ref_logits: ArrayLike,
    logits: ArrayLike,
    t_ref: float = 1.0,
    t: float = 1.0,
    threshold: float = 0.5,
) -> dict[str, float | int]:
    """How far an exported artifact's outputs moved from the reference model's, on the same inputs.

    Each side is calibrated with its own temperature before deciding, as it would be at runtime;
    ``*_dlogit`` compare the raw logits (conversion parity), ``mean_abs_dprob`` the calibrated probabilities.
    ``flip_rate`` is the fraction of decisions that changed and ``agreement = 1 - flip_rate``.
    With labels, ``acc_pp`` and ``f1_pp`` give artifact minus reference in percentage points; with ``y=None``
    those keys are absent.
    """
    z_ref = _as_finite(ref_logits, "ref_logits")
    z = _as_finite(logits, "logits")
    _check_same_length(z_ref, z, "ref_logits", "logits")
    if z.size == 0:
        raise ValueError("logits are empty; drift needs at least one sample")
    _check_temperature(t_ref, "t_ref")
    _check_temperature(t, "t")
    pred_ref = predict_open(z_ref, t_ref, threshold)
    pred = predict_open(z, t, threshold)
    flip_rate = float(np.mean(pred != pred_ref))
    dlogit = np.abs(z - z_ref)
    report: dict[str, float | int] = {
        "n": int(z.size),
        "flip_rate": flip_rate,
        "agreement": 1.0 - flip_rate,
        "mean_abs_dprob": float(np.mean(np.abs(sigmoid(z / t) - sigmoid(z_ref / t_ref)))),
        "max_abs_dlogit": float(dlogit.max()),
        "mean_abs_dlogit": float(dlogit.mean()),
    }
    if y is not None:
        labels = _as_labels(y)
        _check_same_length(labels, z, "y", "logits")
        # From counts rather than a difference of two rounded fractions, so -0.2 pp reads as -0.2.
        report["acc_pp"] = 100.0 * float(np.sum(pred == labels) - np.sum(pred_ref == labels)) / len(labels)
        report["f1_pp"] = 100.0 * (f1_score(labels, pred) - f1_score(labels, pred_ref))
    return report
