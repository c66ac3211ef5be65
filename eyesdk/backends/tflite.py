"""TFLite backend: LiteRT's ``ai_edge_litert.interpreter``, falling back to the legacy ``tflite_runtime``.

LiteRT is the maintained runtime (tflite-runtime 2.14 needs numpy<2 and lacks newer op versions), so it is tried
first. TFLite files here have a fixed batch size (LiteRT-Torch cannot export a dynamic batch): larger batches are
run as a loop of fixed-size calls. Integer I/O files (full int8) are fed by quantizing the float input with the
input tensor's scale/zero-point and their output is dequantized the same way, so callers always see float logits.

The interpreter is not thread-safe (``set_tensor``/``invoke``/``get_tensor`` share buffers), so one lock serialises
calls; for batch-1 latency that costs ~0.1 µs uncontended. The interpreter is built from the verified bytes
(``model_content``), never from a path; a forked child re-creates it (and so its lock) on its first call, since a
lock held by a parent thread inside ``invoke`` stays held in the child forever.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .base import BaseRunner, ModelFiles


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # legacy fallback
    return Interpreter


class TfliteRunner(BaseRunner):
    name = "tflite"

    def _open(self) -> None:
        self._interpreter = _interpreter_class()(model_content=self._source.main, num_threads=int(self._threads))
        self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        out = self._interpreter.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        shape = tuple(int(d) for d in inp["shape"])
        self.fixed_batch = shape[0]
        self._in_shape = shape
        self._in_dtype = np.dtype(inp["dtype"])
        self._in_quant = self._quantization(inp)
        self._out_quant = self._quantization(out)
        self._lock = threading.Lock()

    @staticmethod
    def _quantization(detail: dict) -> tuple[np.float32, np.float32, int, int] | None:
        """(scale, zero_point, min, max) of an integer I/O tensor, or None for a float one."""
        scale, zero_point = detail["quantization"]
        dtype = np.dtype(detail["dtype"])
        if dtype.kind in "iu" and scale:
            info = np.iinfo(dtype)
            return np.float32(scale), np.float32(zero_point), int(info.min), int(info.max)
        return None

    def _prepare(self, batch: np.ndarray) -> np.ndarray:
        """Match the file's layout ((N,1,S,S) or (N,S,S,1): the same bytes for one channel) and dtype."""
        if batch.shape != self._in_shape:
            batch = batch.reshape(self._in_shape)
        if self._in_quant is not None:  # q = clip(round(x / scale) + zp): TFLite's own quantization rule
            scale, zero_point, lo, hi = self._in_quant
            q = np.divide(batch, scale)
            np.rint(q, out=q)
            q += zero_point
            np.maximum(q, lo, out=q)
            np.minimum(q, hi, out=q)
            return q.astype(self._in_dtype)
        if batch.dtype != self._in_dtype:
            return batch.astype(self._in_dtype)
        return batch

    def _run_direct(self, batch: np.ndarray) -> np.ndarray:
        x = self._prepare(batch)
        with self._lock:
            self._interpreter.set_tensor(self._in, x)
            self._interpreter.invoke()
            y = self._interpreter.get_tensor(self._out)  # a copy, safe to use after the lock is released
        out = y.reshape(-1).astype(np.float32, copy=False)  # get_tensor already copied
        if self._out_quant is not None:
            scale, zero_point, _, _ = self._out_quant
            out -= zero_point
            out *= scale
        return out


def load(source: ModelFiles | Path, threads: int) -> TfliteRunner:
    """Open a .tflite file with ``threads`` interpreter threads (XNNPACK delegate as LiteRT applies it by default)."""
    return TfliteRunner(source, threads)
