"""Export one trained model to every format x precision of ``eyesdk.formats``: one module per format.

Each format module (``onnx``, ``openvino``, ``tflite``) exposes the same three names, so this package only looks
them up by the format key (capabilities as data, no if/elif chain):

* ``BATCH``: ``"dynamic"`` or the fixed batch size its files are exported with;
* ``export(model, precision, path, calib, metadata) -> list[Path]``: writes the main file first, then any
  companion file (OpenVINO ``.bin``, TFLite ``.json`` sidecar);
* ``read_metadata(path) -> dict[str, str]``: the eyesdk metadata embedded in a file.

Heavy libraries are imported by the format modules only, and a format module only when it is used.
"""

from __future__ import annotations

import copy
import importlib
import json
from importlib import metadata as importlib_metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from eyesdk.bundle import LABELS, OUTPUT
from eyesdk.formats import FORMATS, PRECISIONS, artifact_filename
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract

from ..calibration import CalibrationSet, as_calibration_set

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

__all__ = [
    "LABELS",
    "OUTPUT",
    "THRESHOLD",
    "artifact_batch",
    "artifact_metadata",
    "eyesdk_version",
    "export_artifact",
    "format_module",
    "read_artifact_metadata",
]

THRESHOLD = 0.5  # decision threshold of new bundles: sigmoid(z / T) >= THRESHOLD is "open" (metrics.predict_open)
INPUT_NAME = "input"
OUTPUT_NAME = "logit"


def check_format(fmt: str, precision: str) -> None:
    """Raise ValueError naming the allowed values when a format or precision is not in the table."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")


def format_module(fmt: str) -> ModuleType:
    """The exporter module of a format (imported on first use: it pulls that format's converter)."""
    check_format(fmt, PRECISIONS[0])
    return importlib.import_module(f"{__name__}.{fmt}")


def artifact_batch(fmt: str) -> str | int:
    """Batch axis of the files a format exports: "dynamic" or a fixed size (the runtime loops over it)."""
    return format_module(fmt).BATCH


def eyesdk_version() -> str:
    try:
        return importlib_metadata.version("eyesdk")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def artifact_metadata(
    fmt: str, precision: str, contract: PreprocessContract = DEFAULT_CONTRACT, threshold: float = THRESHOLD
) -> dict[str, str]:
    """The self-description written into every artifact, as a flat str -> str map (JSON text where structured).

    Keys: ``preprocess``, ``labels``, ``output``, ``threshold``, ``format``, ``precision``, ``batch``,
    ``eyesdk_version``. A file copied out of its bundle still says how to feed it and what its output means.
    """
    check_format(fmt, precision)
    return {
        "preprocess": json.dumps(contract.to_dict(), sort_keys=True),
        "labels": json.dumps(LABELS),
        "output": json.dumps(OUTPUT, sort_keys=True),
        "threshold": repr(float(threshold)),
        "format": fmt,
        "precision": precision,
        "batch": str(artifact_batch(fmt)),
        "eyesdk_version": eyesdk_version(),
    }


def export_model_copy(model: nn.Module, contract: PreprocessContract = DEFAULT_CONTRACT) -> nn.Module:
    """An eval-mode copy with every Dropout replaced by Identity (what eval mode computes anyway), wrapped once in
    the input standardization when the contract puts it in the graph (``standardize.StandardizedInput``).

    Exporters then see the inference graph only; a left-over eval dropout between the pooled features and the
    head makes the PT2E -> TFLite int8 path requantize across it wrongly (measured: logit error 2.7, 55 %
    agreement, versus 0.11 and 100 % without it).
    """
    from torch import nn

    dropouts = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)
    clone = copy.deepcopy(model).eval()
    for parent in list(clone.modules()):
        for attr, child in list(parent.named_children()):
            if isinstance(child, dropouts):
                setattr(parent, attr, nn.Identity())
    for p in clone.parameters():
        p.requires_grad_(False)
    if contract.normalization_in_model:
        from .standardize import StandardizedInput

        return StandardizedInput(clone, contract.std_floor).eval()
    return clone


def export_artifact(
    model: nn.Module,
    fmt: str,
    precision: str,
    out_dir: str | Path,
    calib: CalibrationSet | np.ndarray | None = None,
    *,
    contract: PreprocessContract = DEFAULT_CONTRACT,
    threshold: float = THRESHOLD,
    **options: Any,
) -> list[Path]:
    """Write ``eyestate_<precision><ext>`` (plus companions) into out_dir; returns the paths, main file first.

    ``calib`` (the crops as the artifact will be fed: ``eyesdk.preprocess.preprocess_grey`` under ``contract``, see
    :mod:`eyesdk.converters.calibration`) is required for int8 and ignored otherwise. ``options`` go to the
    format's exporter (e.g. ``keep_head_float=False`` for int8).
    """
    check_format(fmt, precision)
    if precision == "int8" and calib is None:
        raise ValueError(f"{fmt} int8 export needs calibration data (preprocessed crops); got calib=None")
    calib_set = as_calibration_set(calib) if calib is not None else None
    if calib_set is not None and calib_set.size != contract.size:
        raise ValueError(
            f"calibration crops are {calib_set.size}x{calib_set.size} but the contract says {contract.size}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / artifact_filename(fmt, precision)
    meta = artifact_metadata(fmt, precision, contract, threshold)
    module = format_module(fmt)
    return module.export(export_model_copy(model, contract), precision, path, calib_set, meta, size=contract.size,
                         **options)


def read_artifact_metadata(fmt: str, path: str | Path) -> dict[str, str]:
    """The eyesdk metadata embedded in an exported file (see :func:`artifact_metadata`)."""
    return format_module(fmt).read_metadata(Path(path))
