"""Labelled data for the benchmark (benchmarks/data.py): fold filter, subsampling, crop picking, error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eyesdk.benchmarks import data
from eyesdk.benchmarks.schema import validation_errors
from eyesdk.preprocess import DEFAULT_CONTRACT


def test_parse_subjects_from_splits_at_the_last_colon() -> None:
    assert data.parse_subjects_from("C:/folds/f.json:2") == (Path("C:/folds/f.json"), [2])
    assert data.parse_subjects_from("folds.json:0,1") == (Path("folds.json"), [0, 1])
    with pytest.raises(ValueError, match="must be FOLDS_JSON:FOLD"):
        data.parse_subjects_from("folds.json")
    with pytest.raises(ValueError, match="folds must be integers, e.g. 0 or 0,1; got 'val'"):
        data.parse_subjects_from("folds.json:val")


def test_subsample_is_seeded_and_keeps_order() -> None:
    items = list(range(100))
    first = data.subsample(items, 10)
    assert first == data.subsample(items, 10) and first == sorted(first) and len(first) == 10
    assert data.subsample(items, 500) == items


def test_load_labelled_csv_and_summary(labelled_csv: Path) -> None:
    loaded = data.load_labelled([labelled_csv], DEFAULT_CONTRACT, max_samples=10, progress=False)
    assert loaded.x.shape == (10, 1, 32, 32) and loaded.x.dtype == np.float32
    summary = loaded.summary()
    assert summary == {"sources": [str(labelled_csv)], "subjects_from": None, "max_samples": 10, "n": 10,
                       "n_open": int(loaded.y.sum()), "n_closed": 10 - int(loaded.y.sum()), "bad_files": 0}


def test_fold_without_any_of_the_samples_is_an_error(labelled_csv: Path, tmp_path: Path) -> None:
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"format": "eyesdk-folds/1", "folds": 2, "subjects": {"mrl:s0001": 0,
                                                                                       "csv:p0": 1}}))
    with pytest.raises(ValueError, match=r"no sample of .*eyes.csv belongs to .*folds.json:0"):
        data.load_labelled([labelled_csv], DEFAULT_CONTRACT, subjects_from=f"{folds}:0", progress=False)


def test_undecodable_data_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "list.csv").write_text("path,label\na.png,open\n")
    with pytest.raises(ValueError, match="none of the 1 images of .*list.csv could be decoded"):
        data.load_labelled([tmp_path / "list.csv"], DEFAULT_CONTRACT, progress=False)


def test_pick_crop_prefers_the_size_closest_to_90(labelled_csv: Path) -> None:
    from eyesdk.converters.datasets import read_sources

    picked = data.pick_crop(read_sources([labelled_csv]))
    assert picked is not None
    crop, source = picked
    assert crop.shape == (90, 90) and crop.dtype == np.uint8 and source.endswith(".png")


def test_validator_refuses_remote_references() -> None:
    with pytest.raises(ValueError, match="only local \\$ref are supported"):
        validation_errors({}, {"$ref": "https://example.org/schema.json"})


def test_load_labelled_reads_a_pack_like_its_images(labelled_csv: Path, tmp_path: Path) -> None:
    """A pack made from the same files gives the same samples, and the runtime's preprocessing of the packed crops."""
    from eyesdk.converters.datasets import read_sources
    from eyesdk.converters.pack import Pack, write_pack
    from eyesdk.preprocess import preprocess_grey

    write_pack(read_sources([labelled_csv]), tmp_path / "pack", DEFAULT_CONTRACT, shard_size=5, progress=False)
    from_files = data.load_labelled([labelled_csv], DEFAULT_CONTRACT, max_samples=10, progress=False)
    from_pack = data.load_labelled([tmp_path / "pack"], DEFAULT_CONTRACT, max_samples=10, progress=False)
    assert [s.path for s in from_pack.samples] == [s.path for s in from_files.samples]
    assert [s.attrs for s in from_pack.samples] == [s.attrs for s in from_files.samples]
    np.testing.assert_array_equal(from_pack.y, from_files.y)
    crops = Pack([tmp_path / "pack"]).crops
    rows = [int(s.path.stem[3:]) for s in from_pack.samples]  # eyeNN.png is row NN of the pack
    for x, row in zip(from_pack.x[:, 0], rows, strict=True):
        np.testing.assert_array_equal(x, preprocess_grey(crops[row], DEFAULT_CONTRACT))
    np.testing.assert_allclose(from_pack.x, from_files.x, atol=0.05)  # uint8 rounding of the resized crop only


def test_a_pack_of_another_size_or_fold_is_an_error(labelled_csv: Path, tmp_path: Path) -> None:
    from eyesdk.converters.datasets import read_sources
    from eyesdk.converters.pack import write_pack
    from eyesdk.preprocess import PreprocessContract

    write_pack(read_sources([labelled_csv]), tmp_path / "pack", PreprocessContract(size=24), progress=False)
    with pytest.raises(ValueError, match="the pack holds 24 px crops .* pack the data with --size 32"):
        data.load_labelled([tmp_path / "pack"], DEFAULT_CONTRACT, progress=False)
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"format": "eyesdk-folds/1", "folds": 2, "subjects": {"csv:p0": 0, "x:y": 1}}))
    loaded = data.load_labelled([tmp_path / "pack"], PreprocessContract(size=24), subjects_from=f"{folds}:0")
    assert {s.subject for s in loaded.samples} == {"csv:p0"} and len(loaded.y) == 4
    with pytest.raises(ValueError, match=r"no crop of the pack belongs to .*folds.json:1"):
        data.load_labelled([tmp_path / "pack"], PreprocessContract(size=24), subjects_from=f"{folds}:1")
