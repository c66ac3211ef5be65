"""Run an exported artifact in-process, through the very backend code the runtime uses.

Validation must measure what a device will compute, so instead of a second set of runners this goes through
``eyesdk.backends``: the OpenVINO f32 inference hint, the TFLite int8 input quantization and the fixed-batch
loop are then the runtime's own, and a bundle's ``reference_logits`` are reproducible by ``eyesdk`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.backends import load_backend
from eyesdk.formats import FORMATS


def artifact_logits(fmt: str, path: str | Path, x: np.ndarray, threads: int = 1, batch: int = 256) -> np.ndarray:
    """Raw logits (N,) float32 of a (N, 1, S, S) float32 batch, computed by the artifact's runtime backend."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"x has shape {x.shape}; expected (N, 1, S, S) preprocessed crops")
    runner = load_backend(FORMATS[fmt].backend).load(Path(path), threads)
    chunks = [runner.run(np.ascontiguousarray(x[i : i + batch])) for i in range(0, len(x), batch)]
    return np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)


def alternative_logits(fmt: str, path: str | Path, x: np.ndarray) -> np.ndarray | None:
    """Logits of the same file from a second, independent implementation of its kernels, or None where there is none.

    ONNX: OpenVINO's CPU plugin reads the .onnx itself; TFLite: LiteRT's builtin kernels instead of XNNPACK.
    Their difference to :func:`artifact_logits` is a measured sample of how much legitimate kernel differences
    (rounding in int8 requantization, summation order) move the logits, which sizes a device tolerance. Optional
    by nature: when the second implementation refuses the file, the answer is None (not measured).
    """
    runners = {"onnx": _openvino_on_onnx, "tflite": _tflite_builtin_kernels}
    run = runners.get(fmt)
    if run is None:
        return None
    try:
        return run(Path(path), np.ascontiguousarray(x, dtype=np.float32))
    except (ImportError, RuntimeError, ValueError):  # not installed, or it refuses the file: nothing to compare
        return None


def _openvino_on_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    return np.asarray(compiled(x)[0], dtype=np.float32).reshape(-1)


def _tflite_builtin_kernels(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    out = interpreter.get_output_details()[0]
    shape = tuple(int(d) for d in inp["shape"])
    logits = []
    for start in range(0, len(x), shape[0]):  # fixed batch: loop, zero-padding the last slice
        part = x[start : start + shape[0]]
        padded = np.zeros((shape[0], *x.shape[1:]), np.float32)
        padded[: len(part)] = part
        logits.append(_invoke(interpreter, inp, out, padded.reshape(shape))[: len(part)])
    return np.concatenate(logits)


def _invoke(interpreter: Any, inp: dict[str, Any], out: dict[str, Any], batch: np.ndarray) -> np.ndarray:
    dtype = np.dtype(inp["dtype"])
    scale, zero_point = inp["quantization"]
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        batch = np.clip(np.rint(batch / np.float32(scale)) + zero_point, info.min, info.max)
    interpreter.set_tensor(inp["index"], batch.astype(dtype))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"]).reshape(-1).astype(np.float32)
    scale, zero_point = out["quantization"]
    if np.dtype(out["dtype"]).kind in "iu" and scale:
        y = (y - zero_point) * np.float32(scale)
    return y
