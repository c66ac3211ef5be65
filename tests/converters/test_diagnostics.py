"""eyesdk.converters.diagnostics: separability numbers, the design-note verdict and the readable report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eyesdk import metrics
from eyesdk.converters import diagnostics as dg


def _embeddings(shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], 150)
    emb = rng.normal(size=(300, 8)) + shift * y[:, None]
    scores = emb.sum(axis=1)  # a linear head on the embedding
    return emb, y, scores


def test_separability_returns_the_shared_metrics() -> None:
    emb, y, scores = _embeddings(shift=1.0)
    diag = dg.separability(emb, y, scores)
    assert set(diag) == {"fisher", "intra", "inter", "ks"}
    assert diag["fisher"] == metrics.fisher_ratio(emb, y)
    assert (diag["intra"], diag["inter"]) == metrics.intra_inter_distance(emb, y)
    assert diag["ks"] == metrics.ks_distance(scores[y == 1], scores[y == 0])


def test_separated_classes_do_not_warrant_a_margin_head() -> None:
    diag = dg.separability(*_embeddings(shift=3.0))
    assert diag["fisher"] > 1 and diag["intra"] < diag["inter"] and diag["ks"] > 0.5
    line = dg.verdict(diag)
    assert line.startswith("classes are well separated (fisher ")
    assert line.endswith("a margin (ArcFace) head is not warranted.")
    assert "\n" not in line


def test_overlapping_classes_name_what_failed_and_suggest_a_margin_head() -> None:
    diag = dg.separability(*_embeddings(shift=0.05))
    line = dg.verdict(diag)
    assert line.startswith("classes are not clearly separated: fisher ")
    assert "fail (> 1)" in line
    assert "fail (> 0.5 good, < 0.3 bad)" in line
    assert line.endswith("a margin (ArcFace) head may be worth trying.")


def test_verdict_names_only_the_failed_check() -> None:
    line = dg.verdict({"fisher": 0.5, "intra": 1.0, "inter": 2.0, "ks": 0.8})
    assert "fisher 0.5 fail (> 1)" in line
    assert "intra" not in line and "ks" not in line
    assert line.endswith("may be worth trying.")


def test_borderline_ks_is_reported_as_such() -> None:
    line = dg.verdict({"fisher": 2.0, "intra": 1.0, "inter": 2.0, "ks": 0.4})
    assert line == (
        "classes are mostly separated, but ks 0.4 borderline (> 0.5 good, < 0.3 bad); "
        "a margin (ArcFace) head is probably not needed, recheck on more data."
    )


def test_unmeasurable_values_count_as_undefined_not_as_passing() -> None:
    emb = np.zeros((3, 2))
    diag = dg.separability(emb, [1, 1, 1], [0.1, 0.2, 0.3])
    assert math.isnan(diag["fisher"]) and math.isnan(diag["ks"])
    line = dg.verdict(diag)
    assert "fisher nan undefined (> 1)" in line
    assert "ks nan undefined" in line


def test_format_diagnostics_shows_value_threshold_and_status() -> None:
    text = dg.format_diagnostics({"fisher": 2.5, "intra": 1.0, "inter": 3.0, "ks": 0.2})
    lines = text.splitlines()
    assert len(lines) == len(dg.CHECKS) + 1
    fisher, distance, ks, last = lines
    assert fisher.startswith("fisher ratio (embedding)") and "fisher 2.5" in fisher and "> 1" in fisher
    assert fisher.endswith("pass")
    assert "intra 1 vs inter 3" in distance and "intra < inter" in distance and distance.endswith("pass")
    assert "ks 0.2" in ks and "> 0.5 good, < 0.3 bad" in ks and ks.endswith("fail")
    assert last == f"verdict: {dg.verdict({'fisher': 2.5, 'intra': 1.0, 'inter': 3.0, 'ks': 0.2})}"


def test_mismatched_scores_are_rejected() -> None:
    emb, y, scores = _embeddings(shift=1.0)
    with pytest.raises(ValueError, match=r"scores has shape \(299,\) but y has shape \(300,\)"):
        dg.separability(emb, y, scores[:-1])


@pytest.mark.parametrize("render", [dg.verdict, dg.format_diagnostics])
def test_incomplete_diagnostics_are_rejected(render) -> None:
    with pytest.raises(ValueError, match=r"diagnostics lack intra, ks; expected keys fisher, intra, inter, ks"):
        render({"fisher": 2.0, "inter": 1.0})
