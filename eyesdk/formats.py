"""Capabilities as data: which formats and precisions exist, which backend runs each, and their gates.

The export loop, the CLI choices, the runtime's candidate list and the benchmark matrix are all driven by this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # artifact format key used in manifests and CLIs
    backend: str  # runtime backend that executes it
    extension: str  # main file suffix
    extra: str  # pip extra that installs the backend


FORMATS: dict[str, Format] = {
    "onnx": Format("onnx", "onnxruntime", ".onnx", "onnx"),
    "openvino": Format("openvino", "openvino", ".xml", "openvino"),
    "tflite": Format("tflite", "tflite", ".tflite", "tflite"),
}
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
BACKENDS: tuple[str, ...] = tuple(f.backend for f in FORMATS.values())
BACKEND_FORMAT: dict[str, str] = {f.backend: f.name for f in FORMATS.values()}

# Default accuracy-drift gates against torch fp32, |Δaccuracy| in percentage points (fp32 must match too).
DEFAULT_DRIFT_GATE_PP: dict[str, float] = {"fp32": 0.05, "fp16": 0.05, "int8": 0.5}


def artifact_filename(fmt: str, precision: str) -> str:
    return f"eyestate_{precision}{FORMATS[fmt].extension}"
