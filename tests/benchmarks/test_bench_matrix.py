"""What a benchmark measures (benchmarks/matrix.py): the bundle's artifacts in the format table's order."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import copy_bundle, drop_artifacts

from eyesdk import backends
from eyesdk.benchmarks import matrix
from eyesdk.bundle import load_bundle
from eyesdk.formats import FORMATS, PRECISIONS


def test_cells_follow_the_format_table_and_precision_order(tiny_bundle: Path) -> None:
    cells = matrix.cells(load_bundle(tiny_bundle))
    assert [(c.format.name, c.precision) for c in cells] == [(f, p) for f in FORMATS for p in PRECISIONS]
    assert cells[0].key == "onnxruntime fp32" and cells[0].artifact["file"] == "eyestate_fp32.onnx"
    assert cells[-1].backend == "tflite"


def test_cells_are_narrowed_to_what_is_asked_and_shipped(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    assert [c.key for c in matrix.cells(bundle, ["tflite", "onnxruntime"], ["int8"])] == ["onnxruntime int8",
                                                                                          "tflite int8"]
    partial = copy_bundle(tiny_bundle, tmp_path / "partial")
    drop_artifacts(partial, ("onnx", "fp16"))
    assert "onnxruntime fp16" not in [c.key for c in matrix.cells(load_bundle(partial))]
    assert matrix.cells(load_bundle(partial), ["onnxruntime"], ["fp16"]) == []


def test_installed_cells_skip_backends_that_are_not_installed(tiny_bundle: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "is_available", lambda backend: backend == "tflite")
    assert {c.backend for c in matrix.installed_cells(load_bundle(tiny_bundle))} == {"tflite"}
