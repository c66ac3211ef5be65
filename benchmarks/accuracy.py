"""Quality of one artifact's logits on labelled crops: accuracy, calibration, separation, drift, slices, plot data.

Only plumbing: every number comes from ``eyesdk.metrics`` (the functions training and export validation use), so a
benchmark can never disagree with the model card because of a second implementation. Probabilities are
``sigmoid(z / T)`` with the artifact's *own* temperature, and decisions use the bundle's threshold, exactly as
``EyeState`` decides at runtime.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from eyesdk.metrics import binary_report, drift_report, reliability_bins, sigmoid

RELIABILITY_BINS = 15  # the ECE binning of eyesdk.metrics, so the diagram shows what the ECE summarises
HISTOGRAM_BINS = 20
MAX_SLICE_VALUES = 12  # an attribute with more distinct values (image ids, names) is an identifier, not a slice
SKIP_ATTRIBUTES = frozenset({"image_id"})


def _clean(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def score(y: np.ndarray, logits: np.ndarray, temperature: float = 1.0, threshold: float = 0.5) -> dict[str, Any]:
    """The ``accuracy``, ``calibration``, ``separation`` and ``plots`` blocks of one result entry."""
    report = binary_report(y, logits, temperature, threshold)
    p = sigmoid(np.asarray(logits, dtype=np.float64) / temperature)
    labels = np.asarray(y)
    return {
        "accuracy": {k: _clean(report[k]) for k in ("acc", "bacc", "f1", "auc")},
        "calibration": {k: _clean(report[k]) for k in ("ece", "mce", "brier", "nll")},
        "separation": {k: _clean(report[k]) for k in ("ks", "fisher")},
        "plots": {"reliability": reliability(labels, p), "histogram": histogram(labels, p)},
    }


def reliability(y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS) -> dict[str, list[float | None]]:
    """Reliability-diagram data (``eyesdk.metrics.reliability_bins``) as JSON lists; empty bins are None."""
    table = reliability_bins(y, p, bins)
    return {key: [_clean(v) for v in np.asarray(values, dtype=np.float64)] for key, values in table.items()}


def histogram(y: np.ndarray, p: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, list[float]]:
    """Counts of P(open) per class over equal bins of [0, 1]: how far apart the model pushes the two eye states."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    labels = np.asarray(y)
    closed, _ = np.histogram(p[labels == 0], bins=edges)
    opened, _ = np.histogram(p[labels == 1], bins=edges)
    return {"edges": edges.tolist(), "closed": closed.astype(float).tolist(), "open": opened.astype(float).tolist()}


def drift(
    y: np.ndarray | None,
    reference_logits: np.ndarray,
    logits: np.ndarray,
    t_reference: float,
    t: float,
    threshold: float,
    reference: str,
) -> dict[str, Any]:
    """The ``drift`` block: this artifact against the reference artifact's logits on the same crops.

    ``acc_pp``/``f1_pp`` are artifact minus reference in percentage points, ``flip_rate`` the share of changed
    decisions, ``mean_abs_dprob`` the mean change of calibrated P(open) (each side with its own temperature).
    """
    report = drift_report(y, reference_logits, logits, t_reference, t, threshold)
    block: dict[str, Any] = {"reference": reference}
    for key in ("acc_pp", "f1_pp", "flip_rate", "mean_abs_dprob", "max_abs_dlogit"):
        block[key] = _clean(report[key]) if key in report else None
    return block


def attribute_slices(samples: Sequence[Any]) -> dict[str, np.ndarray]:
    """``{"source=mrl": mask, "glasses=yes": mask, ...}``: the groups a breakdown reports, in a stable order.

    Sources are listed when there is more than one; an attribute becomes slices when it has at most 12 distinct
    values among the samples carrying it (MRL's glasses, reflections, lighting, sensor, gender; a CSV's extra
    columns). A one-valued attribute is kept: it still names the subset of samples that carry it.
    """
    n = len(samples)
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, sample in enumerate(samples):
        groups["source"][str(sample.source)].append(i)
        for key, value in sorted(getattr(sample, "attrs", {}).items()):
            if key not in SKIP_ATTRIBUTES and value != "":
                groups[key][str(value)].append(i)
    slices: dict[str, np.ndarray] = {}
    for key in ["source", *sorted(k for k in groups if k != "source")]:
        values = groups[key]
        if len(values) > MAX_SLICE_VALUES or (key == "source" and len(values) < 2):
            continue
        for value in sorted(values):
            mask = np.zeros(n, dtype=bool)
            mask[values[value]] = True
            slices[f"{key}={value}"] = mask
    return slices


def breakdown(
    slices: Mapping[str, np.ndarray], y: np.ndarray, logits: np.ndarray, temperature: float, threshold: float
) -> list[dict[str, Any]]:
    """Per-slice acc/bacc/f1/auc/ece: where the model (or a quantized copy of it) is weak, e.g. glasses or sensor."""
    rows = []
    labels = np.asarray(y)
    z = np.asarray(logits)
    for name, mask in slices.items():
        if not mask.any():
            continue
        report = binary_report(labels[mask], z[mask], temperature, threshold)
        rows.append(
            {
                "slice": name,
                "n": int(report["n"]),
                "n_open": int(report["n_pos"]),
                **{k: _clean(report[k]) for k in ("acc", "bacc", "f1", "auc", "ece")},
            }
        )
    return rows


def logits_from_probabilities(p_open: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Logits of a model that only reports P(open) (a softmax peer), so the same metric functions apply to it."""
    p = np.clip(np.asarray(p_open, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)
