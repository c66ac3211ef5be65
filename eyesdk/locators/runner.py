"""Running a locator's .tflite model on eyesdk's own backends: LiteRT (the tflite backend) or OpenVINO.

The locator models take one float32 NHWC image and give several outputs; this is the small multi-output cousin of
``eyesdk.backends``' runners, with the same rules: the heavy library is imported on load, OpenVINO computes in f32
(INFERENCE_PRECISION_HINT, else bf16 on AMX CPUs), one thread by default. LiteRT is preferred (measured ~1.2 ms per
model here against ~2-3 ms for OpenVINO at batch 1).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import backends
from ..errors import BackendUnavailableError

ORDER = ("tflite", "openvino")  # backends that read .tflite files, fastest first


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """LiteRT's C++ prints an INFO line on stderr when an interpreter is made; keep the CLI's stderr clean."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class TfliteModel:
    """``run(x) -> [outputs]`` for one float32 input, outputs in the file's order. Thread-safe (one lock)."""

    def __init__(self, path: Path, backend: str = "auto", threads: int = 1) -> None:
        choices = ORDER if backend == "auto" else (backend,)
        if backend != "auto" and backend not in ORDER:
            raise ValueError(f"locator models run on {' or '.join(ORDER)} (or 'auto'), not {backend!r}")
        available = [b for b in choices if backends.is_available(b)]
        if not available:
            raise BackendUnavailableError(
                f"the landmark locator needs the tflite or openvino backend; {backends.install_hint('tflite')}"
            )
        self.backend = available[0]
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.backend == "tflite":
            self._load_litert(threads)
        else:
            self._load_openvino(threads)

    def _load_litert(self, threads: int) -> None:
        from ..backends.tflite import _interpreter_class

        with _quiet_stderr():
            interpreter = _interpreter_class()(model_path=str(self.path), num_threads=int(threads))
            interpreter.allocate_tensors()
        (inp,) = interpreter.get_input_details()
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self._in = inp["index"]
        self._outs = [d["index"] for d in interpreter.get_output_details()]
        self._interpreter = interpreter
        self._run = self._run_litert

    def _run_litert(self, x: np.ndarray) -> list[np.ndarray]:
        it = self._interpreter
        it.set_tensor(self._in, x)
        it.invoke()
        return [it.get_tensor(i) for i in self._outs]

    def _load_openvino(self, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(self.path))
        self.input_shape = tuple(int(d) for d in model.inputs[0].get_shape())
        from ..backends.openvino import compile_config

        self._request = core.compile_model(model, "CPU", compile_config(threads)).create_infer_request()
        self._run = self._run_openvino

    def _run_openvino(self, x: np.ndarray) -> list[np.ndarray]:
        self._request.infer({0: x})
        return [self._request.get_output_tensor(i).data.copy() for i in range(len(self._request.model_outputs))]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(self.input_shape)
        with self._lock:
            return self._run(x)
