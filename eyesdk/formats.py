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
    providers: tuple[str, ...]  # importable top-level modules that provide the backend, in order of preference
    distributions: tuple[str, ...]  # distributions whose version identifies the installed runtime (first found wins)
    load_modules: tuple[str, ...]  # what a first load imports (tflite: the interpreter), one per provider
    sidecars: tuple[str, ...] = ()  # suffixes of files that belong to the main file (OpenVINO IR: the weights .bin)

    def files(self, main: str) -> list[str]:
        """The artifact's main file and its sidecars (same stem), as bundle-relative POSIX paths."""
        stem = main[: -len(self.extension)] if main.endswith(self.extension) else main.rsplit(".", 1)[0]
        return [main, *(stem + suffix for suffix in self.sidecars)]


FORMATS: dict[str, Format] = {
    "onnx": Format(
        "onnx", "onnxruntime", ".onnx", "onnx",
        providers=("onnxruntime",),
        distributions=("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
        load_modules=("onnxruntime",),
    ),
    "openvino": Format(
        "openvino", "openvino", ".xml", "openvino",
        providers=("openvino",), distributions=("openvino",), load_modules=("openvino",), sidecars=(".bin",),
    ),
    "tflite": Format(
        "tflite", "tflite", ".tflite", "tflite",
        providers=("ai_edge_litert", "tflite_runtime"),
        distributions=("ai-edge-litert", "tflite-runtime"),
        load_modules=("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
    ),
}
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
BACKENDS: tuple[str, ...] = tuple(f.backend for f in FORMATS.values())
BACKEND_FORMAT: dict[str, str] = {f.backend: f.name for f in FORMATS.values()}


def format_of_backend(backend: str) -> Format:
    """The format a backend runs (KeyError for an unknown backend: callers check names first)."""
    return FORMATS[BACKEND_FORMAT[backend]]


@dataclass(frozen=True)
class PrecisionGates:
    """Default gates an exported artifact of one precision must pass against torch fp32 to enter a bundle."""

    drift_pp: float  # max |Δaccuracy| on the validation crops, in percentage points (fp32 must match too)
    parity: float  # max |Δlogit| in units of max(1, std of the reference logits): catches broken conversions


GATES: dict[str, PrecisionGates] = {
    "fp32": PrecisionGates(drift_pp=0.05, parity=1e-3),
    "fp16": PrecisionGates(drift_pp=0.05, parity=0.05),
    "int8": PrecisionGates(drift_pp=0.5, parity=0.5),  # loose parity: for int8 the drift gate is the judge
}


def artifact_filename(fmt: str, precision: str) -> str:
    return f"eyestate_{precision}{FORMATS[fmt].extension}"
