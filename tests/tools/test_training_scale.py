"""tools/training_scale.py: the loader and torchrun measurements of docs/training-at-scale.md, on a tiny tree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _load():
    """The tool as a module (tools/ is not a package: it is put on the path for this import only)."""
    sys.path.insert(0, str(TOOLS))
    try:
        return importlib.import_module("training_scale")
    finally:
        sys.path.remove(str(TOOLS))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    from synthetic import write_eye_tree

    return write_eye_tree(tmp_path_factory.mktemp("scale"), people=2, per_class=8, sides=(40, 41))


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
