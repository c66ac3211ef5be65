"""Evaluation reports: slices, worst subjects with the runtime's decision rule, diagnostics, the text table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from eyesdk.converters.datasets import Sample  # noqa: E402
from eyesdk.converters.evaluate import evaluate_model, format_report, report_logits  # noqa: E402
from eyesdk.metrics import binary_report  # noqa: E402


def _samples() -> tuple[list[Sample], np.ndarray, np.ndarray]:
    samples, labels, logits = [], [], []
    for i in range(12):
        label = i % 2
        source = "mrl" if i < 8 else "cew"
        attrs = {"glasses": "yes" if i % 4 < 2 else "no"} if source == "mrl" else {"side": "L"}
        samples.append(Sample(Path(f"{i}.png"), label, source, f"{source}:s{i // 4}", attrs))
        labels.append(label)
        logits.append((2.0 if label else -2.0) * (1 if i not in (3, 8) else -0.25))  # 3: open called closed
    return samples, np.array(labels), np.array(logits)


def test_slices_are_binary_reports_of_their_samples() -> None:
    samples, y, z = _samples()
    report = report_logits(z, y, samples, temperature=1.5)
    assert report["overall"] == binary_report(y, z, 1.5)
    assert set(report["per_source"]) == {"cew", "mrl"}
    assert report["per_source"]["cew"] == binary_report(y[8:], z[8:], 1.5)
    assert set(report["per_attribute"]) == {"glasses"}  # MRL attributes only
    assert report["per_attribute"]["glasses"]["yes"]["n"] == 4
    assert report["threshold"] == 0.5 and report["temperature"] == 1.5


def test_worst_subjects_use_the_decision_rule_with_the_threshold() -> None:
    samples, y, z = _samples()
    worst = {r["subject"]: r["errors"] for r in report_logits(z, y, samples, 1.0)["worst_subjects"]}
    assert worst == {"mrl:s0": 1, "cew:s2": 1, "mrl:s1": 0}
    strict = report_logits(z, y, samples, 1.0, threshold=0.9)  # sigmoid(2) = 0.88: every crop is called closed
    assert sum(r["errors"] for r in strict["worst_subjects"]) == int(y.sum())  # (crop 8 is now right)
    assert strict["overall"]["acc"] == binary_report(y, z, 1.0, 0.9)["acc"]


def test_evaluate_model_adds_diagnostics_and_formats(tiny) -> None:
    n = len(tiny.y_val)
    samples = [Sample(Path(f"{i}.png"), int(label), "synthetic", f"syn:{i % 7}") for i, label in enumerate(tiny.y_val)]
    report = evaluate_model(tiny.model, tiny.x_val, tiny.y_val, samples, temperature=1.0)
    assert report["overall"]["n"] == n and report["overall"]["bacc"] > 0.9
    assert {"fisher", "intra", "inter", "ks", "verdict"} <= set(report["diagnostics"])
    text = format_report(report)
    assert text.splitlines()[1].startswith("overall") and "source=synthetic" in text and "verdict:" in text
