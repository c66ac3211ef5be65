"""OpenVINO IR export (``.xml`` + ``.bin``), dynamic batch, converted from the PyTorch module's ``torch.export``.

* fp32: ``ov.convert_model(torch.export.export(module))`` then ``ov.save_model(compress_to_fp16=False)``
  (save_model compresses to fp16 by default).
* fp16: the same graph saved with ``compress_to_fp16=True``: half-size weights, decompressed at compile time.
  The runtime compiles every IR with ``INFERENCE_PRECISION_HINT="f32"`` (see ``eyesdk.backends.openvino``), so
  fp16 is a storage precision with device-independent numbers.
* int8: ``nncf.quantize`` calibrated on the shared set with MINMAX activation ranges (the default estimator
  clips this small net badly: max logit error 6.3 versus 0.6) and without fast bias correction (on the tiny
  test net it moved every logit by ~0.12; the drift gate would flag it, and leaving it off was never worse in
  our measurements). MatMul (the logit head) is left float by default.

Metadata: every ``artifact_metadata`` key is stored in ``rt_info`` under ``["eyesdk", key]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..calibration import CalibrationSet, nncf_dataset

if TYPE_CHECKING:
    from torch import nn

BATCH = "dynamic"
RT_INFO_SECTION = "eyesdk"
HEAD_OP_TYPES = ["MatMul"]


def export(
    model: nn.Module,
    precision: str,
    path: Path,
    calib: CalibrationSet | None,
    metadata: dict[str, str],
    *,
    size: int,
    keep_head_float: bool = True,
    fast_bias_correction: bool = False,
) -> list[Path]:
    """Write ``path`` (.xml) and its .bin; returns ``[xml, bin]``."""
    import openvino as ov

    from .standardize import standardizes_input

    ov_model = convert_fp32(model, size)
    if precision == "int8":
        ov_model = quantize_int8(ov_model, calib, keep_head_float, fast_bias_correction,
                                 keep_input_float=standardizes_input(model))
    set_metadata(ov_model, metadata)
    ov.save_model(ov_model, str(path), compress_to_fp16=precision == "fp16")
    return [path, path.with_suffix(".bin")]


def convert_fp32(model: nn.Module, size: int) -> Any:
    """``ov.Model`` of the eval-mode module with input shape (?, 1, S, S).

    Converted from a ``torch.export`` program rather than the module itself, which OpenVINO would trace with
    the deprecated TorchScript tracer.
    """
    import openvino as ov
    import torch

    from . import INPUT_NAME, OUTPUT_NAME

    program = torch.export.export(model.eval(), (torch.zeros(2, 1, size, size),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    ov_model = ov.convert_model(program, input=[(-1, 1, size, size)])
    ov_model.inputs[0].get_tensor().set_names({INPUT_NAME})
    ov_model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    return ov_model


def quantize_int8(ov_model: Any, calib: CalibrationSet | None, keep_head_float: bool = True,
                  fast_bias_correction: bool = False, keep_input_float: bool = False) -> Any:
    """NNCF post-training int8 with min/max activation ranges over the whole calibration set; with
    ``keep_input_float``, the in-graph input standardization (the ops before the first Convolution) stays float."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from .standardize import before_first

    if calib is None:
        raise ValueError("OpenVINO int8 export needs calibration data; got calib=None")
    kwargs: dict[str, Any] = {}
    types = HEAD_OP_TYPES if keep_head_float else []
    names = before_first([(op.get_type_name(), op.get_friendly_name()) for op in ov_model.get_ordered_ops()],
                         "Convolution") if keep_input_float else []
    if types or names:
        kwargs["ignored_scope"] = nncf.IgnoredScope(types=types, names=names, validate=False)
    return nncf.quantize(
        ov_model,
        nncf_dataset(calib),
        subset_size=len(calib),
        fast_bias_correction=fast_bias_correction,
        advanced_parameters=AdvancedQuantizationParameters(
            activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX
        ),
        **kwargs,
    )


def set_metadata(ov_model: Any, metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        ov_model.set_rt_info(value, [RT_INFO_SECTION, key])


def read_metadata(path: Path) -> dict[str, str]:
    """The ``rt_info["eyesdk"]`` entries of an IR (read without compiling it)."""
    import openvino as ov

    ov_model = ov.Core().read_model(str(path))
    if not ov_model.has_rt_info([RT_INFO_SECTION]):
        return {}
    section = ov_model.get_rt_info()[RT_INFO_SECTION]
    return {key: str(section[key].astype(str)) for key in section}
