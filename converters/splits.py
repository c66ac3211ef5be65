"""Subject-disjoint folds: whole people (or face photos) go to one fold, so test scores are on unseen faces.

A random image split would put near-duplicate video frames of one person in train and test and overstate
accuracy. Folds are stratified by source (each fold gets a share of every dataset, so every test fold has
both infrared and visible-light images) and balanced in size and class. The assignment is written to a small
JSON file so that training, calibration and the model card all use the same split.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.atomic import atomic_write_text

from .datasets import OPEN, Sample
from .sampletable import SampleTable, as_table

FOLDS_FORMAT = "eyesdk-folds/1"


def _main_sources(table: SampleTable) -> np.ndarray:
    """Per subject code, the source holding most of its images (ties: the first name), -1 for absent subjects."""
    n_sources = len(table.sources)
    counts = np.bincount(table.subject_codes * n_sources + table.source_codes,
                         minlength=len(table.subjects) * n_sources).reshape(len(table.subjects), n_sources)
    return np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)  # names are sorted: argmax = first name


def split_by_subject(samples: Sequence[Sample] | SampleTable, folds: int = 5, seed: int = 0) -> list[int]:
    """Fold index (0..folds-1) per sample; every subject lies in exactly one fold.

    Greedy per source: subjects from largest to smallest (equal sizes in a seeded random order) each go to
    the fold with the least of that source's images of the subject's classes (minimum of
    open_in_fold * subject_open + closed_in_fold * subject_closed; ties: fewest images of the source, then
    overall, then lowest index). So folds get similar sizes and class balance from every source -- many MRL
    subjects are nearly all one class, and pure size balancing leaves some folds 70% open.
    The result depends on the samples' subjects, labels and the seed, not on their order.
    """
    return split_table(as_table(samples), folds, seed).tolist()


def split_table(table: SampleTable, folds: int = 5, seed: int = 0) -> np.ndarray:
    """`split_by_subject` of a whole table: (N,) fold per row."""
    return fold_codes(table, folds, seed)[table.subject_codes]


def fold_codes(table: SampleTable, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold per subject code (-1 for a subject without images); the assignment `split_by_subject` describes."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer of at least 2, got {folds!r}")
    rng = np.random.default_rng(seed)
    n_open, n_closed = table.subject_sizes()
    main = _main_sources(table)
    fold_of = np.full(len(table.subjects), -1, dtype=np.int64)
    totals = [0] * folds
    for source in range(len(table.sources)):  # sources in name order, as the names are sorted
        members = np.flatnonzero(main == source)  # subject codes in name order
        if not len(members):
            continue
        tie_order = rng.permutation(len(members))
        sizes = n_open[members] + n_closed[members]
        order = sorted(range(len(members)), key=lambda i: (-int(sizes[i]), int(tie_order[i])))
        open_in = [0] * folds
        closed_in = [0] * folds
        for i in order:
            o, c = int(n_open[members[i]]), int(n_closed[members[i]])
            target = min(range(folds),
                         key=lambda f: (o * open_in[f] + c * closed_in[f], open_in[f] + closed_in[f], totals[f], f))
            fold_of[members[i]] = target
            open_in[target] += o
            closed_in[target] += c
            totals[target] += o + c
    return fold_of


def _subject_folds(table: SampleTable, folds_assignment: Sequence[int] | np.ndarray) -> np.ndarray:
    """Fold per subject code (-1: absent) from a fold per row, refusing a subject split across folds."""
    folds = np.asarray(folds_assignment, dtype=np.int64).reshape(-1)
    if len(table) != len(folds):
        raise ValueError(f"{len(table)} samples but {len(folds)} fold indices")
    if len(folds) and folds.min() < 0:
        row = int(np.argmax(folds < 0))
        raise ValueError(f"{table.read_samples(np.array([row]))[0].path}: fold index {folds[row]} is negative")
    low = np.full(len(table.subjects), np.iinfo(np.int64).max)
    high = np.full(len(table.subjects), -1)
    np.minimum.at(low, table.subject_codes, folds)
    np.maximum.at(high, table.subject_codes, folds)
    split = np.flatnonzero((high >= 0) & (low != high))
    if len(split):
        code = int(split[0])
        raise ValueError(f"subject {table.subjects[code]} is in folds {low[code]} and {high[code]}; folds must be "
                         "subject-disjoint")
    return high


def write_folds(
    path: str | Path,
    samples: Sequence[Sample] | SampleTable,
    folds_assignment: Sequence[int] | np.ndarray,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write the split as JSON (atomically): per fold its subjects and counts, and a {subject: fold} map."""
    table = as_table(samples)
    fold_of = _subject_folds(table, folds_assignment)
    folds = np.asarray(folds_assignment, dtype=np.int64).reshape(-1)
    n_folds = int(fold_of.max(initial=-1)) + 1
    images = np.bincount(folds, minlength=n_folds)
    opened = np.bincount(folds, weights=table.labels == OPEN, minlength=n_folds).astype(np.int64)
    per_source = np.bincount(folds * len(table.sources) + table.source_codes,
                             minlength=n_folds * len(table.sources)).reshape(n_folds, len(table.sources))
    summary: list[dict[str, Any]] = [
        {"fold": f, "images": int(images[f]), "open": int(opened[f]), "closed": int(images[f] - opened[f]),
         "sources": {str(name): int(n) for name, n in zip(table.sources, per_source[f], strict=True) if n},
         "subjects": [str(name) for name in table.subjects[fold_of == f]]}
        for f in range(n_folds)
    ]
    present = fold_of >= 0
    document = {
        "format": FOLDS_FORMAT,
        "folds": n_folds,
        "meta": dict(meta or {}),
        "fold_summary": summary,
        "subjects": {str(k): int(v) for k, v in zip(table.subjects[present], fold_of[present], strict=True)},
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
    return assign_table(as_table(samples), folds_json).tolist()


def assign_table(table: SampleTable, folds_json: Mapping[str, Any] | str | Path) -> np.ndarray:
    """`assign_from_folds` of a whole table: (N,) fold per row."""
    document = folds_json if isinstance(folds_json, Mapping) else read_folds(folds_json)
    fold_of: Mapping[str, int] = document["subjects"]
    present = np.bincount(table.subject_codes, minlength=len(table.subjects)) > 0
    names = [str(name) for name in table.subjects[present]]
    missing = [name for name in names if name not in fold_of]
    if missing:
        raise ValueError(
            f"{len(missing)} subjects are not in the folds file, e.g. {', '.join(missing[:5])}; "
            "the data changed since the split was written -- split again or use the data it was made for"
        )
    by_code = np.full(len(table.subjects), -1, dtype=np.int64)
    by_code[present] = [int(fold_of[name]) for name in names]
    return by_code[table.subject_codes]


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
