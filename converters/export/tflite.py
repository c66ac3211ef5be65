"""TFLite export through LiteRT-Torch, at a fixed batch of 1 (a dynamic batch fails to trace in litert-torch).

* fp32: ``litert_torch.convert(module, (example,))``: exact float parity.
* fp16: the same conversion with ``quant_recipes.full_fp16_recipe()`` (ai-edge-quantizer FLOAT_CAST,
  weight-only): float16 weights with DEQUANTIZE ops in front of the float kernels; float32 I/O.
* int8: torchao PT2E: ``prepare_pt2e`` with LiteRT's ``PT2EQuantizer`` (symmetric per-channel int8 weights,
  int8 activations with min/max observers: the default histogram observer clipped the standardized input at
  +1.6), calibration on the shared set, ``convert_pt2e(fold_quantize=False)``, then
  ``litert_torch.convert(..., quant_config=QuantConfig(pt2e_quantizer=...))``. The input tensor is int8 (the
  runtime quantizes with the tensor's scale / zero point); the fully connected head stays float by default, so
  the output is a float32 logit.

Metadata: the ``artifact_metadata`` map is embedded as TFLite model metadata named ``eyesdk`` (a JSON object in
a flatbuffer buffer, see :func:`read_metadata`) and also written as a sidecar ``<file>.json`` next to the
.tflite, readable without flatbuffers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..calibration import CalibrationSet, calibrate_pt2e

if TYPE_CHECKING:
    from torch import nn

BATCH = 1
METADATA_NAME = "eyesdk"
SIDECAR_SUFFIX = ".json"
_FILE_IDENTIFIER = b"TFL3"


def sidecar_path(path: Path) -> Path:
    """``eyestate_int8.tflite`` -> ``eyestate_int8.tflite.json``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


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
    """Write ``path`` (.tflite with embedded metadata) and its JSON sidecar; returns ``[tflite, sidecar]``."""
    import torch

    example = (torch.zeros(BATCH, 1, size, size),)
    with tempfile.TemporaryDirectory(prefix=".tflite-", dir=path.parent) as tmp:
        raw = Path(tmp) / path.name
        with _quiet():
            if precision == "int8":
                edge = _convert_int8(model, example, calib, keep_head_float)
            elif precision == "fp16":
                from litert_torch.generative.quantize import quant_recipes

                edge = _litert().convert(model, example, quant_config=quant_recipes.full_fp16_recipe())
            else:
                edge = _litert().convert(model, example)
            edge.export(str(raw))
        path.write_bytes(embed_metadata(raw.read_bytes(), metadata))
    sidecar = sidecar_path(path)
    sidecar.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return [path, sidecar]


def _litert() -> Any:
    import litert_torch

    return litert_torch


def int8_quantizer(keep_head_float: bool = True, only_module: str | None = None) -> Any:
    """LiteRT's PT2E quantizer: symmetric per-channel int8 weights, min/max int8 activations; with
    ``only_module``, only that submodule's ops are annotated (everything outside it stays float)."""
    import torch
    from litert_torch.quantize import pt2e_quantizer as pq
    from torchao.quantization.pt2e.observer import MinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationSpec

    base = pq.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    activation = QuantizationSpec(
        dtype=torch.int8, quant_min=-128, quant_max=127, qscheme=torch.per_tensor_affine, is_dynamic=False,
        observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12),
    )
    config = dataclasses.replace(base, input_activation=activation, output_activation=activation)

    class _Quantizer(pq.PT2EQuantizer):
        if keep_head_float:  # fully connected layers (the logit head) are left unannotated, hence float
            STATIC_OPS = [op for op in pq.PT2EQuantizer.STATIC_OPS if op not in ("linear", "addmm")]

        def annotate(self, model: Any) -> Any:
            if only_module is None:
                return super().annotate(model)
            # LiteRT's own set_module_name / set_module_type filters match nothing under torch 2.13's
            # nn_module_stack (keys "L__self__model", types as strings): filter on the module paths instead
            self._annotate_all_static_patterns(model, config, partial(_inside, only_module))
            pq.propagate_annotation(model)
            return model

    return _Quantizer().set_global(config)


def _inside(module: str, node: Any) -> bool:
    """Whether an exported graph node comes from the submodule at path ``module`` (or one below it). Nodes
    without a module stack (the weights' get_attr) are part of whichever op uses them."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return True
    return any(path == module or path.startswith(module + ".") for path, _ in stack.values())


def _convert_int8(model: nn.Module, example: tuple[Any, ...], calib: CalibrationSet | None,
                  keep_head_float: bool) -> Any:
    import torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from .standardize import float_outside

    if calib is None:
        raise ValueError("TFLite int8 export needs calibration data; got calib=None")
    quantizer = int8_quantizer(keep_head_float, float_outside(model))
    graph = torch.export.export(model.eval(), example).module()
    prepared = prepare_pt2e(graph, quantizer)
    calibrate_pt2e(prepared, calib)
    converted = convert_pt2e(prepared, fold_quantize=False)
    move_exported_model_to_eval(converted)
    converted.training = False  # already eval semantics (line above); exported modules refuse .eval() itself
    return _litert().convert(converted, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide LiteRT-Torch's step-by-step console log and ai-edge-quantizer's size report (our caller echoes)."""
    key = "LITERT_TORCH_SHOW_PROGRESS"
    before = os.environ.get(key)
    if before is None:
        os.environ[key] = "n"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if before is None:
            os.environ.pop(key, None)


def embed_metadata(model_bytes: bytes, metadata: dict[str, str]) -> bytes:
    """The flatbuffer with a model metadata entry ``eyesdk`` holding ``metadata`` as JSON (replacing any)."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    model.buffers = model.buffers or []
    payload = json.dumps(metadata, sort_keys=True).encode()
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def read_metadata(path: Path) -> dict[str, str]:
    """The ``eyesdk`` metadata embedded in a .tflite file ({} when it has none)."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(Path(path).read_bytes())
    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _name(entry.Name()) == METADATA_NAME:
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    return {}


def _name(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
