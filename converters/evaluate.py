"""Evaluation of a trained model: overall, per source dataset, per MRL attribute and per subject, plus the design
notes' separability diagnostics (Fisher ratio, intra- vs inter-class distance, KS distance) and their verdict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from eyesdk.metrics import binary_report, predict_open

from .datasets import Sample
from .diagnostics import separability, verdict
from .export import THRESHOLD
from .train import predict_embeddings, predict_logits

MRL_ATTRIBUTES = ("glasses", "reflections", "lighting", "sensor", "gender")
TABLE_KEYS = ("n", "acc", "bacc", "f1", "auc", "ece", "ks")


def _groups(samples: Sequence[Sample], key) -> dict[str, np.ndarray]:
    out: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        k = key(s)
        if k is not None:
            out[k].append(i)
    return {k: np.array(v) for k, v in sorted(out.items())}


def report_logits(
    logits: np.ndarray, y: np.ndarray, samples: Sequence[Sample], temperature: float,
    embeddings: np.ndarray | None = None, threshold: float = THRESHOLD,
) -> dict[str, Any]:
    """All report sections from logits (and optionally embeddings) that are already computed.

    Decisions are the runtime's (`predict_open` with the temperature and the bundle threshold).
    """
    y = np.asarray(y, dtype=np.int64)

    def metrics(idx: np.ndarray | slice) -> dict[str, Any]:
        return binary_report(y[idx], logits[idx], temperature, threshold)

    report: dict[str, Any] = {"temperature": float(temperature), "threshold": float(threshold),
                              "overall": metrics(slice(None))}
    report["per_source"] = {src: metrics(idx) for src, idx in _groups(samples, lambda s: s.source).items()}
    per_attr: dict[str, dict[str, Any]] = {}
    for attr in MRL_ATTRIBUTES:
        groups = _groups(samples, lambda s, a=attr: s.attrs.get(a) if s.source == "mrl" else None)
        if groups:
            per_attr[attr] = {v: metrics(idx) for v, idx in groups.items()}
    report["per_attribute"] = per_attr
    wrong_decisions = predict_open(logits, temperature, threshold) != y
    subjects = []
    for subj, idx in _groups(samples, lambda s: s.subject).items():
        wrong = int(wrong_decisions[idx].sum())
        subjects.append({"subject": subj, "n": int(len(idx)), "errors": wrong, "error_rate": wrong / len(idx)})
    report["worst_subjects"] = sorted(subjects, key=lambda r: -r["errors"])[:10]
    if embeddings is not None:
        diag = separability(embeddings, y, logits)
        report["diagnostics"] = {**diag, "verdict": verdict(diag)}
    return report


def evaluate_model(
    model: nn.Module, x_std: np.ndarray, y: np.ndarray, samples: Sequence[Sample], temperature: float = 1.0
) -> dict[str, Any]:
    """Run the model on standardized crops and build the full report."""
    logits = predict_logits(model, x_std)
    return report_logits(logits, y, samples, temperature, predict_embeddings(model, x_std))


def _row(name: str, r: dict[str, Any]) -> str:
    cells = [f"{r[k]:>7d}" if k == "n" else f"{r[k]:>7.4f}" for k in TABLE_KEYS]
    return f"{name:<28}" + "".join(cells)


def format_report(report: dict[str, Any]) -> str:
    """A readable table: overall, per source, per attribute, worst subjects, diagnostics."""
    lines = [f"{'slice':<28}" + "".join(f"{k:>7}" for k in TABLE_KEYS), _row("overall", report["overall"])]
    lines += [_row(f"source={src}", r) for src, r in report["per_source"].items()]
    for attr, values in report["per_attribute"].items():
        lines += [_row(f"mrl {attr}={v}", r) for v, r in values.items()]
    lines.append("worst subjects: " + ", ".join(
        f"{s['subject']} {s['errors']}/{s['n']}" for s in report["worst_subjects"][:5]))
    if "diagnostics" in report:
        d = report["diagnostics"]
        lines.append(f"diagnostics: fisher {d['fisher']:.2f}  intra {d['intra']:.3f} < inter {d['inter']:.3f}  "
                     f"ks {d['ks']:.3f}")
        lines.append(f"verdict: {d['verdict']}")
    return "\n".join(lines)
