"""tools/training_scale.py: the loader and torchrun measurements of docs/training-at-scale.md, on a tiny tree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

TOOL = Path(__file__).resolve().parents[2] / "tools" / "training_scale.py"


def _load():
    spec = importlib.util.spec_from_file_location("training_scale", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["training_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    from synthetic import synthetic_eye

    root = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(0)
    for person in range(2):
        for label in ("open", "closed"):
            (root / f"p{person}" / label).mkdir(parents=True)
            for i in range(8):
                Image.fromarray(synthetic_eye(label == "open", 40, rng)).save(root / f"p{person}" / label / f"{i}.png")
    return root


def test_loader_measures_every_path(tree: Path, tmp_path: Path) -> None:
    tool = _load()
    assert tool.main(["loader", "--data", str(tree), "--images", "20", "--batches", "2",
                      "--json", str(tmp_path / "l.json")]) == 0
    import json

    result = json.loads((tmp_path / "l.json").read_text())
    assert result["images"] == 20 and result["decoded"] == 20 and result["pack_bytes_per_crop"] == 576
    for key in ("decode_files_crops_per_s", "write_pack_crops_per_s", "pack_random_batches_crops_per_s",
                "augment_standardize_crops_per_s_1_thread"):
        assert result[key] > 0


def test_ddp_times_a_torchrun_job(tree: Path) -> None:
    result = _load().measure_ddp([str(tree)], [1], samples_per_epoch=512, epochs=2, size=24)
    one = result["procs"]["1"]
    assert len(one["epoch_seconds"]) == 1 and one["samples_per_s"] > 0 and one["speedup_vs_first"] == 1.0
