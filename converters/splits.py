"""Subject-disjoint folds: whole people (or face photos) go to one fold, so test scores are on unseen faces.

A random image split would put near-duplicate video frames of one person in train and test and overstate
accuracy. Folds are stratified by source (each fold gets a share of every dataset, so every test fold has
both infrared and visible-light images) and balanced in size and class. The assignment is written to a small
JSON file so that training, calibration and the model card all use the same split.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.atomic import atomic_write_text

from .datasets import OPEN, Sample

FOLDS_FORMAT = "eyesdk-folds/1"


def _subjects_by_source(samples: Sequence[Sample]) -> dict[str, dict[str, tuple[int, int]]]:
    """(open, closed) image counts per subject, grouped by the source holding most of the subject's images."""
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    classes: dict[str, Counter[int]] = defaultdict(Counter)
    for s in samples:
        sources[s.subject][s.source] += 1
        classes[s.subject][s.label] += 1
    grouped: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for subject, counts in sources.items():
        source = min(counts, key=lambda name: (-counts[name], name))
        n_open = classes[subject][OPEN]
        grouped[source][subject] = (n_open, sum(classes[subject].values()) - n_open)
    return grouped


def split_by_subject(samples: Sequence[Sample], folds: int = 5, seed: int = 0) -> list[int]:
    """Fold index (0..folds-1) per sample; every subject lies in exactly one fold.

    Greedy per source: subjects from largest to smallest (equal sizes in a seeded random order) each go to
    the fold with the least of that source's images of the subject's classes (minimum of
    open_in_fold * subject_open + closed_in_fold * subject_closed; ties: fewest images of the source, then
    overall, then lowest index). So folds get similar sizes and class balance from every source -- many MRL
    subjects are nearly all one class, and pure size balancing leaves some folds 70% open.
    The result depends on the samples' subjects, labels and the seed, not on their order.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer of at least 2, got {folds!r}")
    rng = np.random.default_rng(seed)
    totals = [0] * folds
    fold_of: dict[str, int] = {}
    for _, counts in sorted(_subjects_by_source(samples).items()):
        names = sorted(counts)
        tie_order = rng.permutation(len(names))
        order = sorted(range(len(names)), key=lambda i: (-sum(counts[names[i]]), int(tie_order[i])))
        n_open = [0] * folds
        n_closed = [0] * folds
        for i in order:
            o, c = counts[names[i]]
            target = min(
                range(folds),
                key=lambda f: (o * n_open[f] + c * n_closed[f], n_open[f] + n_closed[f], totals[f], f),
            )
            fold_of[names[i]] = target
            n_open[target] += o
            n_closed[target] += c
            totals[target] += o + c
    return [fold_of[s.subject] for s in samples]


def _check_assignment(samples: Sequence[Sample], folds_assignment: Sequence[int]) -> dict[str, int]:
    if len(samples) != len(folds_assignment):
        raise ValueError(f"{len(samples)} samples but {len(folds_assignment)} fold indices")
    fold_of: dict[str, int] = {}
    for sample, fold in zip(samples, folds_assignment, strict=True):
        fold = int(fold)
        if fold < 0:
            raise ValueError(f"{sample.path}: fold index {fold} is negative")
        previous = fold_of.setdefault(sample.subject, fold)
        if previous != fold:
            raise ValueError(
                f"subject {sample.subject} is in folds {previous} and {fold}; folds must be subject-disjoint"
            )
    return fold_of


def write_folds(
    path: str | Path,
    samples: Sequence[Sample],
    folds_assignment: Sequence[int],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write the split as JSON (atomically): per fold its subjects and counts, and a {subject: fold} map."""
    fold_of = _check_assignment(samples, folds_assignment)
    n_folds = max(fold_of.values(), default=-1) + 1
    summary: list[dict[str, Any]] = [
        {"fold": f, "images": 0, "open": 0, "closed": 0, "sources": {}, "subjects": []}
        for f in range(n_folds)
    ]
    for sample, fold in zip(samples, folds_assignment, strict=True):
        entry = summary[int(fold)]
        entry["images"] += 1
        entry["open" if sample.label == OPEN else "closed"] += 1
        entry["sources"][sample.source] = entry["sources"].get(sample.source, 0) + 1
    for subject, fold in sorted(fold_of.items()):
        summary[fold]["subjects"].append(subject)
    for entry in summary:
        entry["sources"] = dict(sorted(entry["sources"].items()))
    document = {
        "format": FOLDS_FORMAT,
        "folds": n_folds,
        "meta": dict(meta or {}),
        "fold_summary": summary,
        "subjects": dict(sorted(fold_of.items())),
    }
    text = json.dumps(document, indent=1, sort_keys=False) + "\n"
    return atomic_write_text(path, text)


def read_folds(path: str | Path) -> dict[str, Any]:
    """Read a folds file written by `write_folds`, refusing other formats."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a folds file, invalid JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FOLDS_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{path}: not a folds file (format {found!r}, expected {FOLDS_FORMAT!r})")
    subjects = document.get("subjects")
    if not isinstance(subjects, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in subjects.items()
    ):
        raise ValueError(f"{path}: 'subjects' must map subject keys to fold indices")
    return document


def assign_from_folds(samples: Sequence[Sample], folds_json: Mapping[str, Any] | str | Path) -> list[int]:
    """Fold per sample from a saved split (a `read_folds` result or its path); unknown subjects are errors."""
    document = folds_json if isinstance(folds_json, Mapping) else read_folds(folds_json)
    fold_of: Mapping[str, int] = document["subjects"]
    missing = sorted({s.subject for s in samples if s.subject not in fold_of})
    if missing:
        raise ValueError(
            f"{len(missing)} subjects are not in the folds file, e.g. {', '.join(missing[:5])}; "
            "the data changed since the split was written -- split again or use the data it was made for"
        )
    return [int(fold_of[s.subject]) for s in samples]


def train_val_test(
    folds_assignment: Sequence[int], test_fold: int, val_fold: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (train, val, test): one fold for test, one for validation (or none), the rest train."""
    folds = np.asarray(folds_assignment, dtype=np.int64)
    present = sorted(set(folds.tolist()))
    for name, fold in (("test_fold", test_fold), ("val_fold", val_fold)):
        if fold is not None and fold not in present:
            raise ValueError(f"{name}={fold} is not one of the folds present {present}")
    if val_fold is not None and val_fold == test_fold:
        raise ValueError(f"val_fold and test_fold must differ, both are {test_fold}")
    test = folds == test_fold
    val = folds == val_fold if val_fold is not None else np.zeros_like(test)
    return ~(test | val), val, test
