"""Is the open/closed split already clean, or would a margin (ArcFace) head help? Three numbers decide.

The design notes ask three things of a trained model before anyone reaches for a margin loss:

* Fisher ratio of the embedding > 1: the class means are further apart than the classes are wide;
* mean intra-class distance < mean inter-class distance: a sample sits closer to its own class;
* KS distance between the two classes' score distributions > 0.5 (good), < 0.3 (bad), in between borderline.

If they all hold, a margin head has little left to fix; if one fails, it may be worth trying. The thresholds
live in :data:`CHECKS`, one row per check, so verdict and report cannot disagree. Numpy only (via
:mod:`eyesdk.metrics`), so it runs wherever the embeddings were dumped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from eyesdk.metrics import fisher_ratio, intra_inter_distance, ks_distance

__all__ = ["CHECKS", "FISHER_MIN", "KS_BAD", "KS_GOOD", "format_diagnostics", "separability", "verdict"]

FISHER_MIN = 1.0
KS_GOOD = 0.5
KS_BAD = 0.3

PASS, BORDERLINE, FAIL, UNDEFINED = "pass", "borderline", "fail", "undefined"

_KEYS = ("fisher", "intra", "inter", "ks")


def separability(embeddings: ArrayLike, y: ArrayLike, scores: ArrayLike) -> dict[str, float]:
    """The three design-note measurements: Fisher ratio and intra/inter distances of the embedding
    (``(n, d)``, the layer before the logit), and the KS distance between the classes' ``scores``
    (logits or probabilities: KS is the same for both).
    """
    labels = np.asarray(y)
    values = np.asarray(scores, dtype=np.float64)
    fisher = fisher_ratio(embeddings, labels)  # validates y and the embeddings' length
    if values.shape != labels.shape:
        raise ValueError(f"scores has shape {values.shape} but y has shape {labels.shape}; they must match")
    intra, inter = intra_inter_distance(embeddings, labels)
    ks = ks_distance(values[labels == 1], values[labels == 0])
    return {"fisher": fisher, "intra": intra, "inter": inter, "ks": ks}


def _fisher_status(diag: Mapping[str, float]) -> str:
    value = diag["fisher"]
    if math.isnan(value):
        return UNDEFINED
    return PASS if value > FISHER_MIN else FAIL


def _distance_status(diag: Mapping[str, float]) -> str:
    intra, inter = diag["intra"], diag["inter"]
    if math.isnan(intra) or math.isnan(inter):
        return UNDEFINED
    return PASS if intra < inter else FAIL


def _ks_status(diag: Mapping[str, float]) -> str:
    value = diag["ks"]
    if math.isnan(value):
        return UNDEFINED
    if value > KS_GOOD:
        return PASS
    return FAIL if value < KS_BAD else BORDERLINE


@dataclass(frozen=True)
class Check:
    """One design-note criterion: how to read it, what it must meet, and how to judge it."""

    label: str
    threshold: str
    describe: Callable[[Mapping[str, float]], str]
    status: Callable[[Mapping[str, float]], str]


CHECKS: tuple[Check, ...] = (
    Check(
        label="fisher ratio (embedding)",
        threshold=f"> {FISHER_MIN:g}",
        describe=lambda d: f"fisher {d['fisher']:.3g}",
        status=_fisher_status,
    ),
    Check(
        label="intra vs inter distance",
        threshold="intra < inter",
        describe=lambda d: f"intra {d['intra']:.3g} vs inter {d['inter']:.3g}",
        status=_distance_status,
    ),
    Check(
        label="ks distance (scores)",
        threshold=f"> {KS_GOOD:g} good, < {KS_BAD:g} bad",
        describe=lambda d: f"ks {d['ks']:.3g}",
        status=_ks_status,
    ),
)


def _require_keys(diag: Mapping[str, float]) -> None:
    missing = [key for key in _KEYS if key not in diag]
    if missing:
        raise ValueError(
            f"diagnostics lack {', '.join(missing)}; expected keys {', '.join(_KEYS)} (see separability())"
        )


def verdict(diag: Mapping[str, float]) -> str:
    """One line for logs and the model card: separated or not, which check failed, and what that suggests."""
    _require_keys(diag)
    statuses = [check.status(diag) for check in CHECKS]
    misses = [
        f"{check.describe(diag)} {status} ({check.threshold})"
        for check, status in zip(CHECKS, statuses, strict=True)
        if status != PASS
    ]
    if any(status in (FAIL, UNDEFINED) for status in statuses):
        return f"classes are not clearly separated: {'; '.join(misses)}; a margin (ArcFace) head may be worth trying."
    if misses:
        return (
            f"classes are mostly separated, but {'; '.join(misses)}; "
            "a margin (ArcFace) head is probably not needed, recheck on more data."
        )
    summary = ", ".join(check.describe(diag) for check in CHECKS)
    return f"classes are well separated ({summary}); a margin (ArcFace) head is not warranted."


def format_diagnostics(diag: Mapping[str, float]) -> str:
    """Readable multi-line report: each measurement, its threshold and its status, then the verdict."""
    _require_keys(diag)
    rows = [(check.label, check.describe(diag), check.threshold, check.status(diag)) for check in CHECKS]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {s}" for a, b, c, s in rows]
    return "\n".join([*lines, f"verdict: {verdict(diag)}"])
