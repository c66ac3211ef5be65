"""What a subject-disjoint cross-validation says about a recipe, beyond the mean of its folds.

* **A temperature that transfers.** Fitting T on one validation fold lets one unusual subject in that fold set it
  (measured: one subject with glasses and big glints pushed T to 1.5-2.0, and the next fold's ECE to 0.03-0.05).
  Here T is fitted on the *pooled out-of-fold* logits of every fold's test set: each crop scored by a model that never
  saw its subject. For an honest per-fold ECE, fold i is scored with the T fitted on the other folds' logits only
  (leave-one-fold-out); the shipped model gets the T of all folds.
* **Intervals that respect subjects.** Crops of one subject are near-duplicate video frames, so a crop-level
  bootstrap would be far too narrow; the interval resamples whole subjects (with replacement) within each source.
* **Where it fails.** Worst-subject open-eye recall: the share of a subject's open eyes called open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.metrics import balanced_accuracy, binary_report, fit_temperature, predict_open

MIN_OPEN_FOR_RECALL = 20  # subjects with fewer open eyes than this are left out of the worst-recall ranking


def check_oof(logits: np.ndarray, y: np.ndarray, subjects: Sequence[str], folds: np.ndarray) -> None:
    """Refuse out-of-fold arrays of different lengths (one entry per crop in each)."""
    n = len(logits)
    lengths = {"labels": len(y), "subjects": len(subjects), "folds": len(folds)}
    wrong = {k: v for k, v in lengths.items() if v != n}
    if wrong:
        raise ValueError(f"out-of-fold arrays disagree: {n} logits but {wrong}")


def pooled_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """T fitted on every fold's out-of-fold logits at once."""
    return fit_temperature(np.asarray(logits, dtype=np.float64), np.asarray(y))


def leave_one_fold_out_temperatures(logits: np.ndarray, y: np.ndarray, folds: np.ndarray) -> dict[int, float]:
    """For each fold, T fitted on the pooled out-of-fold logits of all *other* folds."""
    folds = np.asarray(folds)
    if len(np.unique(folds)) < 2:
        raise ValueError("leave-one-fold-out temperatures need out-of-fold logits from at least two folds")
    return {int(f): fit_temperature(logits[folds != f], y[folds != f]) for f in np.unique(folds)}


def subject_bootstrap(
    y: np.ndarray, logits: np.ndarray, subjects: Sequence[str], metric: Callable[[np.ndarray, np.ndarray], float],
    rounds: int = 1000, seed: int = 0, level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``metric(y, logits)`` over bootstrap resamples of whole subjects."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    subjects = np.asarray(subjects)
    names, inverse = np.unique(subjects, return_inverse=True)
    members = [np.flatnonzero(inverse == i) for i in range(len(names))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        if y[idx].min() == y[idx].max():
            continue  # a one-class resample has no balanced accuracy
        values.append(metric(y[idx], logits[idx]))
    if not values:
        raise ValueError("every bootstrap resample held one class only; the interval is undefined")
    lo, hi = np.percentile(values, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def bacc_of_logits(y: np.ndarray, logits: np.ndarray) -> float:
    return balanced_accuracy(y, predict_open(logits))


def open_recall_by_subject(y: np.ndarray, logits: np.ndarray, subjects: Sequence[str],
                           min_open: int = MIN_OPEN_FOR_RECALL) -> list[dict[str, Any]]:
    """Open-eye recall per subject with at least ``min_open`` open eyes, lowest first."""
    subjects = np.asarray(subjects)
    pred = predict_open(logits)
    rows = []
    for s in np.unique(subjects):
        is_open = (subjects == s) & (y == 1)
        if is_open.sum() >= min_open:
            rows.append({"subject": str(s), "open": int(is_open.sum()), "recall": float(pred[is_open].mean())})
    return sorted(rows, key=lambda r: (r["recall"], r["subject"]))


def summarize_oof(
    logits: np.ndarray, y: np.ndarray, subjects: Sequence[str], sources: Sequence[str], folds: np.ndarray,
    rounds: int = 1000, seed: int = 0,
) -> dict[str, Any]:
    """Pooled temperature, per-fold leave-one-fold-out ECE, per-source bootstrap intervals and worst subjects."""
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    subjects, sources, folds = np.asarray(subjects), np.asarray(sources), np.asarray(folds)
    check_oof(logits, y, subjects, folds)
    t_all = pooled_temperature(logits, y)
    t_lofo = leave_one_fold_out_temperatures(logits, y, folds)
    per_fold: dict[str, Any] = {}
    for f, t in t_lofo.items():
        m = folds == f
        per_fold[str(f)] = {"temperature": t, "overall": binary_report(y[m], logits[m], t),
                            "per_source": {src: binary_report(y[m & (sources == src)], logits[m & (sources == src)], t)
                                           for src in np.unique(sources[m])}}
    per_source: dict[str, Any] = {}
    for src in np.unique(sources):
        m = sources == src
        lo, hi = subject_bootstrap(y[m], logits[m], subjects[m], bacc_of_logits, rounds, seed)
        eces = [per_fold[str(f)]["per_source"][src]["ece"] for f in t_lofo if src in per_fold[str(f)]["per_source"]]
        per_source[str(src)] = {
            "pooled": binary_report(y[m], logits[m], t_all),
            "bacc_interval_95": [lo, hi],
            "ece_lofo_mean": float(np.mean(eces)), "ece_lofo_max": float(np.max(eces)),
            "worst_open_recall": open_recall_by_subject(y[m], logits[m], subjects[m])[:5],
        }
    return {"pooled_temperature": t_all, "lofo": per_fold, "per_source": per_source,
            "bootstrap": {"rounds": rounds, "seed": seed, "unit": "subject"}}


def format_oof(summary: Mapping[str, Any]) -> str:
    lines = [f"pooled out-of-fold temperature T = {summary['pooled_temperature']:.3f}"]
    for src, s in summary["per_source"].items():
        lo, hi = s["bacc_interval_95"]
        worst = ", ".join(f"{w['subject']} {w['recall']:.3f} ({w['open']})" for w in s["worst_open_recall"][:3])
        lines.append(f"{src}: pooled bacc {s['pooled']['bacc']:.4f} [95% subject bootstrap {lo:.4f}, {hi:.4f}]  "
                     f"ECE (leave-one-fold-out T) mean {s['ece_lofo_mean']:.4f} max {s['ece_lofo_max']:.4f}  "
                     f"worst open recall: {worst}")
    return "\n".join(lines)


def collect_oof(data: Any, out_dir: str | Path, folds: Sequence[int]) -> dict[str, np.ndarray]:
    """Out-of-fold logits of a finished ``cv`` run: fold i's test crops scored by ``OUT/fold<i>/best.pt``."""
    from .checkpoint import load_model
    from .train import predict_logits

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("logits", "y", "subjects", "sources", "paths", "folds")}
    for f in folds:
        mask = np.asarray(data.folds) == f
        model, _ = load_model(Path(out_dir) / f"fold{f}" / "best.pt")
        samples = data.subset(mask)
        parts["logits"].append(predict_logits(model, data.standardized(mask)).astype(np.float64))
        parts["y"].append(np.asarray(data.y)[mask])
        parts["subjects"].append(np.array([s.subject for s in samples]))
        parts["sources"].append(np.array([s.source for s in samples]))
        parts["paths"].append(np.array([str(s.path) for s in samples]))
        parts["folds"].append(np.full(int(mask.sum()), f))
    return {k: np.concatenate(v) for k, v in parts.items()}


def write_oof(path: str | Path, oof: Mapping[str, np.ndarray], temperature: float) -> Path:
    """``oof.npz`` (atomic): the arrays of :func:`collect_oof` plus the pooled temperature (label audits read it)."""
    from eyesdk.atomic import atomic_write

    return atomic_write(path, lambda handle: np.savez_compressed(handle, temperature=temperature, **oof))


def read_pooled_temperature(cv_json: str | Path) -> float:
    """The pooled out-of-fold temperature recorded by ``eyesdk-convert cv`` in ``cv.json``."""
    import json

    path = Path(cv_json)
    try:
        value = json.loads(path.read_text())["oof"]["pooled_temperature"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} holds no pooled out-of-fold temperature (oof.pooled_temperature); "
                         "run `eyesdk-convert cv` with this eyesdk to write it") from exc
    if not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"{path}: pooled temperature must be a positive number, got {value!r}")
    return float(value)
