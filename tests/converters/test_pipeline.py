"""prepare_data: decoded crops, folds made once and reused, and model inputs bit-identical to the runtime's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import synthetic_eye, write_eye_tree

from eyesdk.converters.pipeline import jsonable, prepare_data, write_json
from eyesdk.imagefile import read_image
from eyesdk.preprocess import PreprocessContract, preprocess_grey, resize_grey, to_grey

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    def grey_or_colour(is_open: bool, i: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        grey = synthetic_eye(is_open, (int(rng.integers(20, 60)), int(rng.integers(20, 60))), rng)
        image = np.stack([grey, np.roll(grey, 1, 0), np.roll(grey, 2, 1)], axis=2) if i % 2 else grey
        return image, "png" if i % 3 else "jpg"

    root = write_eye_tree(tmp_path_factory.mktemp("eyes"), people=3, per_class=6, seed=3, image=grey_or_colour)
    (root / "p0" / "open" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_model_inputs_are_bit_identical_to_the_runtime(tree: Path, tmp_path: Path) -> None:
    """What validation, evaluation and export calibration feed the model is exactly what EyeState computes."""
    contract = PreprocessContract(size=24)
    data = prepare_data([tree], tmp_path / "folds.json", k=3, contract=contract, progress=False)
    inputs = data.standardized(np.ones(len(data.y), bool))
    for sample, resized, x in zip(data.table.samples(), data.x, inputs, strict=True):
        grey = to_grey(read_image(sample.path), color="rgb")
        assert np.array_equal(resized, resize_grey(grey, contract.size)), sample.path  # stored: the contract's resize
        assert x.dtype == np.float32 and np.array_equal(x, preprocess_grey(grey, contract)), sample.path


def test_artifacts_that_standardize_themselves_are_fed_the_resized_crops(tree: Path, tmp_path: Path) -> None:
    contract = PreprocessContract(size=24)
    data = prepare_data([tree], tmp_path / "folds.json", k=3, contract=contract, progress=False)
    everything = np.ones(len(data.y), bool)
    in_model = PreprocessContract(size=24, normalization_in_model=True)
    assert np.array_equal(np.asarray(data.fed(everything, in_model)), data.x)
    assert np.array_equal(np.asarray(data.fed(everything, contract)), np.asarray(data.standardized(everything)))
    with pytest.raises(ValueError, match=r"the data was prepared with contract .* not .*'size': 32"):
        data.fed(everything, PreprocessContract(size=32, normalization_in_model=True))


def test_unreadable_files_are_reported_and_left_out(tree: Path, tmp_path: Path) -> None:
    data = prepare_data([tree], tmp_path / "folds.json", k=3, progress=False)
    assert [p.name for p, _ in data.bad] == ["broken.png"]
    assert data.summary["unreadable"] == 1 and len(data.table) == 36 == len(data.y) == len(data.x)


def test_folds_are_written_once_then_reused(tree: Path, tmp_path: Path) -> None:
    folds = tmp_path / "folds.json"
    first = prepare_data([tree], folds, k=3, seed=0, progress=False)
    document = json.loads(folds.read_text())
    assert document["folds"] == 3 and document["meta"]["k"] == 3
    second = prepare_data([tree], folds, k=5, seed=9, progress=False)  # k and seed only matter when creating
    np.testing.assert_array_equal(first.folds, second.folds)
    by_subject = {}
    for sample, fold in zip(first.table.samples(), first.folds, strict=True):
        assert by_subject.setdefault(sample.subject, fold) == fold  # subject-disjoint


def test_subset_follows_the_mask(tree: Path, tmp_path: Path) -> None:
    data = prepare_data([tree], tmp_path / "folds.json", k=3, progress=False)
    mask = data.folds == 1
    assert [s.path for s in data.subset(mask)] == [s.path for s, m in zip(data.table.samples(), mask, strict=True) if m]


def test_write_json_is_atomic_and_handles_numpy(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", {"a": np.float32(0.5), "b": np.arange(3), "c": tmp_path})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": str(tmp_path)}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_jsonable_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        jsonable(object())
