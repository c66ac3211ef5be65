"""Subject-disjoint folds: disjoint, seeded, balanced per source, and stable through the JSON file."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from eyesdk.converters.datasets import Sample, read_source
from eyesdk.converters.splits import (
    assign_from_folds,
    read_folds,
    split_by_subject,
    train_val_test,
    write_folds,
)


def _samples(seed: int = 0) -> list[Sample]:
    """Two sources: 12 'mrl' subjects with 20..130 images, 60 'cew' subjects with 1..3 images."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(12):
        for j in range(20 + 10 * i):
            samples.append(Sample(Path(f"m/{i}/{j}.png"), int(j % 3 != 0), "mrl", f"mrl:s{i:04d}"))
    for i in range(60):
        for j in range(int(rng.integers(1, 4))):
            samples.append(Sample(Path(f"c/{i}_{j}.jpg"), i % 2, "cew", f"cew:p{i}"))
    return samples


def _fold_of_subject(samples: list[Sample], folds: list[int]) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = {}
    for s, f in zip(samples, folds, strict=True):
        seen.setdefault(s.subject, set()).add(f)
    return seen


def test_folds_are_subject_disjoint_and_cover_all() -> None:
    samples = _samples()
    folds = split_by_subject(samples, folds=5, seed=0)
    assert len(folds) == len(samples) and set(folds) == set(range(5))
    assert all(len(f) == 1 for f in _fold_of_subject(samples, folds).values())


def test_folds_are_balanced_per_source() -> None:
    samples = _samples()
    folds = split_by_subject(samples, folds=5, seed=0)
    for source in ("mrl", "cew"):
        counts = Counter(f for s, f in zip(samples, folds, strict=True) if s.source == source)
        assert len(counts) == 5, f"every fold has some {source}"
        assert max(counts.values()) / min(counts.values()) < 1.35
    totals = Counter(folds)
    assert max(totals.values()) / min(totals.values()) < 1.2


def test_folds_are_class_balanced_even_with_one_class_subjects() -> None:
    samples = [
        Sample(Path(f"{i}/{j}.png"), int(i % 3 == 0), "mrl", f"mrl:s{i:04d}")
        for i in range(30)
        for j in range(50 + 7 * i)
    ]
    folds = split_by_subject(samples, folds=5, seed=0)
    for fold in range(5):
        labels = [s.label for s, f in zip(samples, folds, strict=True) if f == fold]
        assert 0.2 < sum(labels) / len(labels) < 0.5  # overall open fraction is about 0.35


def test_deterministic_for_a_seed_and_independent_of_order() -> None:
    samples = _samples()
    folds = split_by_subject(samples, folds=5, seed=3)
    assert split_by_subject(samples, folds=5, seed=3) == folds
    shuffled = samples[:]
    random.Random(1).shuffle(shuffled)
    by_subject = {s.subject: f for s, f in zip(samples, folds, strict=True)}
    assert [by_subject[s.subject] for s in shuffled] == split_by_subject(shuffled, folds=5, seed=3)
    assert split_by_subject(samples, folds=5, seed=4) != folds


def test_fold_count_is_checked() -> None:
    with pytest.raises(ValueError, match="folds must be an integer of at least 2, got 1"):
        split_by_subject(_samples(), folds=1)


def test_write_read_assign_round_trip(tmp_path: Path) -> None:
    samples = _samples()
    folds = split_by_subject(samples, folds=4, seed=0)
    path = write_folds(tmp_path / "splits" / "folds.json", samples, folds, {"seed": 0})
    assert [p.name for p in path.parent.iterdir()] == ["folds.json"]
    document = read_folds(path)
    assert document["folds"] == 4 and document["meta"] == {"seed": 0}
    assert sum(f["images"] for f in document["fold_summary"]) == len(samples)
    assert sum(len(f["subjects"]) for f in document["fold_summary"]) == 72
    assert document["fold_summary"][0]["sources"].keys() == {"cew", "mrl"}
    assert assign_from_folds(samples, document) == folds
    assert assign_from_folds(list(reversed(samples)), path) == list(reversed(folds))


def test_unknown_subject_is_an_error(tmp_path: Path) -> None:
    samples = _samples()
    path = write_folds(tmp_path / "folds.json", samples, split_by_subject(samples), None)
    extra = [*samples, Sample(Path("new.png"), 1, "csv", "csv:newcomer")]
    with pytest.raises(ValueError, match=r"1 subjects are not in the folds file, e\.g\. csv:newcomer"):
        assign_from_folds(extra, path)


def test_write_refuses_a_subject_in_two_folds(tmp_path: Path) -> None:
    samples = [Sample(Path("a.png"), 1, "t", "t:x"), Sample(Path("b.png"), 0, "t", "t:x")]
    with pytest.raises(ValueError, match="subject t:x is in folds 0 and 1; folds must be subject-disjoint"):
        write_folds(tmp_path / "f.json", samples, [0, 1], {})
    with pytest.raises(ValueError, match="2 samples but 1 fold indices"):
        write_folds(tmp_path / "f.json", samples, [0], {})
    assert not (tmp_path / "f.json").exists()


def test_read_folds_refuses_other_files(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a folds file"):
        read_folds(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        read_folds(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(json.dumps({"format": "eyesdk-folds/1", "subjects": {"a": "one"}}))
    with pytest.raises(ValueError, match="'subjects' must map subject keys to fold indices"):
        read_folds(tmp_path / "z.json")


def test_train_val_test_masks() -> None:
    folds = [0, 1, 2, 3, 4, 0, 1, 2]
    train, val, test = train_val_test(folds, test_fold=2, val_fold=1)
    assert test.tolist() == [False, False, True, False, False, False, False, True]
    assert val.tolist() == [False, True, False, False, False, False, True, False]
    assert (train ^ val ^ test).all() and not (train & test).any()
    train, val, test = train_val_test(folds, test_fold=0, val_fold=None)
    assert not val.any() and train.sum() == 6
    with pytest.raises(ValueError, match="val_fold and test_fold must differ"):
        train_val_test(folds, 1, 1)
    with pytest.raises(ValueError, match=r"test_fold=7 is not one of the folds present \[0, 1, 2, 3, 4\]"):
        train_val_test(folds, 7, 1)


@pytest.mark.real_data
def test_real_data_folds_are_disjoint_and_mixed(shared_data: Path) -> None:
    samples = read_source(shared_data)
    folds = split_by_subject(samples, folds=5, seed=0)
    assert all(len(f) == 1 for f in _fold_of_subject(samples, folds).values())
    for fold in range(5):
        sources = {s.source for s, f in zip(samples, folds, strict=True) if f == fold}
        assert sources == {"mrl", "cew"}
