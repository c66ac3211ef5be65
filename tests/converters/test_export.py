"""Export of every format x precision from the tiny model: files load in their runtime, match PyTorch, describe
themselves. The heavy tests share one tiny bundle (built once per process by ``make_tiny_bundle``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from eyesdk.formats import FORMATS, PRECISIONS, artifact_filename

ARTIFACTS = [(fmt, precision) for fmt in FORMATS for precision in PRECISIONS]
# Max |logit - PyTorch fp32| accepted on the tiny model's validation crops (its logits have std ~4.5).
PARITY = {"fp32": 1e-4, "fp16": 2e-2, "int8": 0.5}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny):
    from eyesdk.converters.testing import make_tiny_bundle

    path = make_tiny_bundle(tmp_path_factory.mktemp("export") / "bundle")
    return path, json.loads((path / "manifest.json").read_text())


def _entry(manifest: dict, fmt: str, precision: str) -> dict:
    found = [a for a in manifest["artifacts"] if (a["format"], a["precision"]) == (fmt, precision)]
    assert found, f"{fmt} {precision} missing from the bundle; rejected: {manifest['rejected']}"
    return found[0]


# ---------------------------------------------------------------------------------------------- per artifact


@pytest.mark.heavy
@pytest.mark.parametrize(("fmt", "precision"), ARTIFACTS)
def test_artifact_runs_in_its_runtime_and_matches_torch(bundle, tiny, fmt, precision):
    from eyesdk.converters.runners import artifact_logits
    from eyesdk.converters.validate import torch_logits

    path, manifest = bundle
    entry = _entry(manifest, fmt, precision)
    assert entry["file"] == artifact_filename(fmt, precision)
    logits = artifact_logits(fmt, path / entry["file"], tiny.x_val)
    reference = torch_logits(tiny.model, tiny.x_val)
    assert logits.shape == reference.shape
    assert np.abs(logits - reference).max() <= PARITY[precision]
    assert entry["validation"]["max_abs_logit_error"] <= PARITY[precision]
    assert entry["validation"]["agreement"] >= 0.99
    # The probe's reference logits are reproducible within the recorded tolerance (here: bit-for-bit machine).
    probe = np.load(path / manifest["probe"]["file"])
    again = artifact_logits(fmt, path / entry["file"], probe)
    assert np.abs(again - np.asarray(entry["reference_logits"])).max() <= entry["tolerance"]
    assert entry["tolerance"] > 0 and entry["temperature"] > 0


@pytest.mark.heavy
@pytest.mark.parametrize(("fmt", "precision"), ARTIFACTS)
def test_artifact_describes_itself_when_copied_alone(bundle, tmp_path, fmt, precision):
    from eyesdk.converters.export import read_artifact_metadata

    path, manifest = bundle
    entry = _entry(manifest, fmt, precision)
    for rel in manifest["files"]:  # the main file and its companions (.bin, .json sidecar)
        if rel.startswith(Path(entry["file"]).stem + "."):
            shutil.copy(path / rel, tmp_path / rel)
    meta = read_artifact_metadata(fmt, tmp_path / entry["file"])
    assert meta["format"] == fmt and meta["precision"] == precision
    assert json.loads(meta["preprocess"]) == manifest["preprocess"]
    assert json.loads(meta["labels"]) == ["closed", "open"]
    assert json.loads(meta["output"]) == {"kind": "logit", "positive": "open"}
    assert meta["batch"] == str(entry["batch"])
    assert meta["eyesdk_version"] == manifest["eyesdk_version"]
    if fmt == "tflite":
        sidecar = json.loads((tmp_path / (entry["file"] + ".json")).read_text())
        assert sidecar == meta


@pytest.mark.heavy
@pytest.mark.parametrize(("fmt", "precision"), ARTIFACTS)
def test_second_kernel_implementation_agrees_and_sizes_the_tolerance(bundle, fmt, precision):
    from eyesdk.converters.runners import alternative_logits, artifact_logits

    path, manifest = bundle
    entry = _entry(manifest, fmt, precision)
    probe = np.load(path / "probe.npy")
    alternative = alternative_logits(fmt, path / entry["file"], probe)
    if fmt == "openvino":  # no second public implementation of an IR's kernels
        assert alternative is None and "kernel_variation" not in entry["validation"]
        return
    variation = float(np.abs(alternative - artifact_logits(fmt, path / entry["file"], probe)).max())
    assert variation <= PARITY[precision]
    assert entry["validation"]["kernel_variation"] == pytest.approx(variation, abs=1e-6)
    assert entry["tolerance"] >= 3 * variation


# ------------------------------------------------------------------------------------------ format details


@pytest.mark.heavy
def test_onnx_files_are_opset18_dynamic_batch_and_float_io(bundle):
    import onnx

    path, _ = bundle
    for precision in PRECISIONS:
        proto = onnx.load(str(path / artifact_filename("onnx", precision)))
        onnx.checker.check_model(proto, full_check=True)
        assert {o.domain: o.version for o in proto.opset_import}[""] == 18
        for value in (proto.graph.input[0], proto.graph.output[0]):
            assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp16/int8 keep float32 I/O
            assert value.type.tensor_type.shape.dim[0].dim_param  # symbolic batch
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert not list(path.glob("*.onnx.data"))
    int8 = onnx.load(str(path / artifact_filename("onnx", "int8")))
    quantized = [n for n in int8.graph.node if n.op_type == "QuantizeLinear"]
    assert quantized
    zero_points = {t.name: t for t in int8.graph.initializer}
    assert all(zero_points[n.input[2]].data_type == onnx.TensorProto.UINT8 for n in quantized)  # uint8 activations
    head = [n for n in int8.graph.node if n.op_type == "Gemm"]
    weight_producers = {o for n in int8.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    assert head and head[0].input[1] not in weight_producers  # the logit head stays float


@pytest.mark.heavy
def test_openvino_files_have_dynamic_batch_and_int8_ops(bundle):
    import openvino as ov

    path, _ = bundle
    core = ov.Core()
    for precision in PRECISIONS:
        model = core.read_model(str(path / artifact_filename("openvino", precision)))
        assert model.inputs[0].get_partial_shape()[0].is_dynamic
    ops = {op.get_type_name() for op in core.read_model(str(path / "eyestate_int8.xml")).get_ops()}
    assert "FakeQuantize" in ops
    assert (path / "eyestate_fp16.bin").stat().st_size < (path / "eyestate_fp32.bin").stat().st_size


@pytest.mark.heavy
def test_tflite_files_have_batch_one_and_int8_input(bundle):
    from ai_edge_litert.interpreter import Interpreter

    path, manifest = bundle
    for precision in PRECISIONS:
        interpreter = Interpreter(model_path=str(path / artifact_filename("tflite", precision)))
        (inp,) = interpreter.get_input_details()
        out = interpreter.get_output_details()[0]
        assert inp["shape"][0] == 1 and _entry(manifest, "tflite", precision)["batch"] == 1
        assert inp["dtype"] == (np.int8 if precision == "int8" else np.float32)
        assert out["dtype"] == np.float32  # the head stays float, so the logit comes out as float


@pytest.mark.heavy
def test_the_in_graph_standardization_is_numpys():
    import torch

    from eyesdk.converters.export import export_model_copy
    from eyesdk.converters.export.standardize import NETWORK, before_first, float_outside, standardizes_input
    from eyesdk.preprocess import PreprocessContract, standardize

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x

    contract = PreprocessContract(size=24, normalization_in_model=True)
    wrapped, plain = export_model_copy(Identity(), contract), export_model_copy(Identity())
    assert standardizes_input(wrapped) and float_outside(wrapped) == NETWORK
    assert not standardizes_input(plain) and float_outside(plain) is None
    rng = np.random.default_rng(0)
    x = (rng.random((6, 1, 24, 24)) * 255).astype(np.float32)
    x[0] = 7.0  # flat: the floor keeps it from being blown up
    x[1] = 7.0 + rng.random((1, 24, 24)).astype(np.float32)  # low contrast, below the floor
    got = wrapped(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, standardize(x, contract.std_floor), atol=2e-6)
    assert before_first([("ReduceMean", "a"), ("Sub", "b"), ("Conv", "c"), ("Relu", "d")], "Conv") == ["a", "b"]
    with pytest.raises(ValueError, match="the graph has no Conv op; cannot tell its input standardization"):
        before_first([("MatMul", "a")], "Conv")


def test_export_is_eval_mode_even_from_a_training_mode_model(tiny, tmp_path):
    from eyesdk.converters.export import export_artifact
    from eyesdk.converters.runners import artifact_logits
    from eyesdk.converters.validate import torch_logits

    tiny.model.train()  # dropout active, BatchNorm in batch-statistics mode
    try:
        (path,) = export_artifact(tiny.model, "onnx", "fp32", tmp_path)
    finally:
        tiny.model.eval()
    x = tiny.x_val[:16]
    np.testing.assert_allclose(artifact_logits("onnx", path, x), torch_logits(tiny.model, x), atol=1e-4)


# ------------------------------------------------------------------------------------- light (no converters)


def test_export_refuses_int8_without_calibration_and_unknown_names(tmp_path):
    from eyesdk.converters.export import export_artifact

    with pytest.raises(ValueError, match="int8 export needs calibration data"):
        export_artifact(None, "onnx", "int8", tmp_path)
    with pytest.raises(ValueError, match="unknown format 'coreml'; choose from onnx, openvino, tflite"):
        export_artifact(None, "coreml", "fp32", tmp_path)
    with pytest.raises(ValueError, match="unknown precision 'int4'; choose from fp32, fp16, int8"):
        export_artifact(None, "onnx", "int4", tmp_path)
    with pytest.raises(ValueError, match="calibration crops are 16x16 but the contract says 32"):
        export_artifact(None, "onnx", "int8", tmp_path, np.zeros((4, 1, 16, 16), np.float32))


def test_artifact_metadata_is_flat_strings():
    from eyesdk.converters.export import artifact_metadata
    from eyesdk.preprocess import DEFAULT_CONTRACT

    meta = artifact_metadata("onnx", "fp16")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    assert json.loads(meta["preprocess"]) == DEFAULT_CONTRACT.to_dict()
    assert meta["batch"] == "dynamic"


def test_calibration_set_normalises_shapes_and_subsamples():
    from eyesdk.converters.calibration import CalibrationSet

    x = np.arange(10 * 4 * 4, dtype=np.float32).reshape(10, 4, 4)
    calib = CalibrationSet(x, limit=5)
    crops = list(calib)
    assert len(calib) == 5 and calib.size == 4
    assert all(c.shape == (1, 1, 4, 4) and c.dtype == np.float32 and c.flags.c_contiguous for c in crops)
    np.testing.assert_array_equal(crops[0][0, 0], x[0])
    np.testing.assert_array_equal(crops[-1][0, 0], x[-1])
    batches = CalibrationSet([x[:3, None], x[3]], limit=None)  # a batch and a single (S, S) crop
    assert len(batches) == 4
    doubled = CalibrationSet(x[:2], transform=lambda c: c * 2, limit=None)
    np.testing.assert_array_equal(doubled.array[1, 0], x[1] * 2)
    assert len(list(calib)) == len(list(calib))  # re-iterable: each quantizer makes its own pass


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (np.zeros((3, 1, 4, 5), np.float32), r"has shape \(3, 1, 4, 5\); expected"),
        (np.zeros((3, 4, 4), np.uint8), "has dtype uint8; expected float32 crops"),
        (np.full((2, 4, 4), np.nan, np.float32), "contains NaN or infinite values"),
        ([], "calibration data is empty"),
        ([np.zeros((4, 4), np.float32), np.zeros((5, 5), np.float32)], "calibration crops have different shapes"),
    ],
)
def test_calibration_set_refuses_bad_crops(items, message):
    from eyesdk.converters.calibration import CalibrationSet

    with pytest.raises(ValueError, match=message):
        CalibrationSet(items)


def test_calibration_set_refuses_bad_limit():
    from eyesdk.converters.calibration import CalibrationSet

    with pytest.raises(ValueError, match="limit must be a positive number of crops or None; got 0"):
        CalibrationSet(np.zeros((2, 4, 4), np.float32), limit=0)


def test_ort_reader_feeds_each_crop_once_and_rewinds():
    pytest.importorskip("onnxruntime")
    from eyesdk.converters.calibration import CalibrationSet, ort_reader

    calib = CalibrationSet(np.zeros((3, 4, 4), np.float32))
    reader = ort_reader(calib, "input")
    feeds = [reader.get_next() for _ in range(4)]
    assert [f is None for f in feeds] == [False, False, False, True]
    assert feeds[0]["input"].shape == (1, 1, 4, 4)
    reader.rewind()
    assert reader.get_next() is not None
