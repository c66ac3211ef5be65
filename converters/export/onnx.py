"""ONNX export: dynamo exporter at opset 18 with a dynamic batch axis; fp16 and int8 are rewrites of that graph.

* fp32: ``torch.onnx.export(dynamo=True, opset_version=18, external_data=False)``; BatchNorm is folded into the
  convolutions by the exporter's optimizer and the graph is eval-mode.
* fp16: ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``: weights and compute
  in float16, the model's input and output stay float32 (Cast nodes at the edges), so callers feed the same
  array to every precision. The converter appends those Casts at the end of the node list, so the graph is
  re-sorted topologically before saving (``onnx.checker`` refuses it otherwise).
* int8: ONNX Runtime ``quantize_static`` in QDQ format, per-channel int8 weights and **uint8 activations**
  (OpenVINO cannot compile QDQ files with int8 activations), min/max calibration on the shared calibration
  set, after ORT's ``quant_pre_process``. Fully connected layers (the logit head) stay float by default:
  single-logit heads are where int8 bites.

Metadata: every ``artifact_metadata`` key is stored in ``metadata_props`` as ``eyesdk.<key>``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..calibration import CalibrationSet, ort_reader

if TYPE_CHECKING:
    import onnx
    from torch import nn

BATCH = "dynamic"
OPSET = 18
METADATA_PREFIX = "eyesdk."
HEAD_OP_TYPES = ("Gemm", "MatMul")


def export(
    model: nn.Module,
    precision: str,
    path: Path,
    calib: CalibrationSet | None,
    metadata: dict[str, str],
    *,
    size: int,
    keep_head_float: bool = True,
) -> list[Path]:
    """Write one ONNX file (no external data) for ``precision``; returns ``[path]``."""
    import onnx

    from .standardize import standardizes_input

    fp32 = export_fp32_proto(model, size)
    builders: dict[str, Callable[[], onnx.ModelProto]] = {
        "fp32": lambda: fp32,
        "fp16": lambda: to_fp16(fp32),
        "int8": lambda: quantize_int8(fp32, calib, keep_head_float, workdir=path.parent,
                                      keep_input_float=standardizes_input(model)),
    }
    proto = builders[precision]()
    set_metadata(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path))
    return [path]


def export_fp32_proto(model: nn.Module, size: int) -> onnx.ModelProto:
    """The fp32 graph, dynamic batch, input ``input`` (N, 1, S, S) and output ``logit`` (N, 1)."""
    import torch

    from . import INPUT_NAME, OUTPUT_NAME

    example = torch.zeros(2, 1, size, size)  # batch 2: a batch of 1 would be specialised despite dynamic_shapes
    program = torch.onnx.export(
        model.eval(),
        (example,),
        dynamo=True,
        opset_version=OPSET,
        external_data=False,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        verbose=False,
    )
    return program.model_proto


def to_fp16(fp32: onnx.ModelProto) -> onnx.ModelProto:
    """Float16 weights and compute with float32 I/O, topologically sorted."""
    import onnx
    import onnx_ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(_copy(fp32), keep_io_types=True)
    graph = onnx_ir.from_proto(half)
    graph.graph.sort()
    proto = onnx_ir.to_proto(graph)
    onnx.checker.check_model(proto)
    return proto


def head_node_names(proto: onnx.ModelProto) -> list[str]:
    """Names of the fully connected nodes (Gemm / MatMul): the logit head in these networks."""
    return [node.name for node in proto.graph.node if node.op_type in HEAD_OP_TYPES]


def quantize_int8(
    fp32: onnx.ModelProto, calib: CalibrationSet | None, keep_head_float: bool = True, workdir: Path | None = None,
    keep_input_float: bool = False,
) -> onnx.ModelProto:
    """Static QDQ int8 (per-channel int8 weights, uint8 activations) calibrated on ``calib``; with
    ``keep_input_float``, the in-graph input standardization (the nodes before the first Conv) stays float."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .standardize import before_first

    if calib is None:
        raise ValueError("ONNX int8 export needs calibration data; got calib=None")
    input_name = fp32.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix=".onnx-int8-", dir=workdir) as tmp:
        src, prepared, dst = (Path(tmp) / f"{stem}.onnx" for stem in ("fp32", "prepared", "int8"))
        onnx.save_model(fp32, str(src))
        quant_pre_process(str(src), str(prepared))  # shape inference + basic graph optimisation, as ORT advises
        quantize_static(
            str(prepared),
            str(dst),
            ort_reader(calib, input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=(head_node_names(fp32) if keep_head_float else [])
            + (before_first([(n.op_type, n.name) for n in fp32.graph.node], "Conv") if keep_input_float else []),
        )
        return onnx.load_model(str(dst))


def set_metadata(proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace the eyesdk.* entries of ``metadata_props`` with ``metadata``; other entries are kept."""
    import onnx

    kept = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(METADATA_PREFIX)]
    del proto.metadata_props[:]
    entries = kept + [(METADATA_PREFIX + k, v) for k, v in sorted(metadata.items())]
    onnx.helper.set_model_props(proto, dict(entries))
    proto.doc_string = ("eyesdk eye-state model: (N, 1, S, S) crops as metadata 'preprocess' says (standardized, or "
                        "resized only where normalization_in_model) -> (N, 1) logit of 'open'")


def read_metadata(path: Path) -> dict[str, str]:
    """The ``eyesdk.*`` entries of a file's ``metadata_props``, without the prefix."""
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)
    return {p.key[len(METADATA_PREFIX) :]: p.value for p in proto.metadata_props if p.key.startswith(METADATA_PREFIX)}


def _copy(proto: onnx.ModelProto) -> Any:
    import onnx

    clone = onnx.ModelProto()
    clone.CopyFrom(proto)
    return clone
