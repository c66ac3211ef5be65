"""OpenVINO backend (CPU plugin).

Precision: every artifact is compiled with ``INFERENCE_PRECISION_HINT="f32"``. Without it the CPU plugin silently
runs an "FP32" IR in bf16 on AMX/AVX512-bf16 x86 CPUs and in f16 on ARM, which moves the logits by device (0.07 seen
here) and breaks the bundle's ``reference_logits`` parity check. The ``fp16`` artifact is therefore a *storage*
precision (half-size weights, decompressed once at compile time) computed in f32: its numbers are the same on every
CPU, and for a ~15 k parameter net lower-precision arithmetic would buy no measurable latency anyway. The ``int8``
IR keeps its quantized ops in int8; only the float parts around them follow the f32 hint.

The IR is read from the verified bytes: the .xml as the model, its .bin as a weights tensor (never a path).

Threads: an ``InferRequest`` is not re-entrant, so each calling thread lazily gets its own request from the one
compiled model (no lock on the hot path, and several threads can infer at once).

Fork: a child forked while another thread was inside ``infer`` hung, even with a fresh ``Core`` (the plugin's state
was caught mid-call), so this runner is ``gated``: each thread's calls hold their own lock, which the fork hook takes
to wait them out. With more than one inference thread, the CPU plugin's TBB worker pool does not survive a fork at
all (a re-created model hung in ``infer`` in the child), so such a runner refuses to run in a child, saying why.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .base import BaseRunner, ModelFiles


def compile_config(threads: int) -> dict[str, object]:
    """How eyesdk compiles every OpenVINO model (its artifacts and the locator's): f32 kernels (bit-stable logits on
    every CPU), ``threads`` threads, one stream tuned for latency."""
    return {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": int(threads), "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1}


class OpenVinoRunner(BaseRunner):
    name = "openvino"
    gated = True

    def _open(self) -> None:
        import openvino as ov

        self._tensor = ov.Tensor
        core = ov.Core()
        (weights,) = self._source.sidecars
        model = core.read_model(model=self._source.main, weights=ov.Tensor(np.frombuffer(weights, dtype=np.uint8)))
        shape = model.inputs[0].get_partial_shape()
        self.fixed_batch = shape[0].get_length() if shape[0].is_static else None
        # The shape the hot path binds a buffer for: batch 1 (or the file's fixed batch) when the rest is static.
        rest = [d.get_length() if d.is_static else None for d in list(shape)[1:]]
        self._bound_shape = None if None in rest else (self.fixed_batch or 1, *rest)
        self._compiled = core.compile_model(model, "CPU", compile_config(self._threads))
        self._local = threading.local()

    def _fork_refusal(self) -> str | None:
        if self._threads == 1:
            return None
        return (f"OpenVINO with threads={self._threads} cannot run in a forked child: its CPU plugin's worker pool "
                "does not survive fork; use threads=1 (which does), or start workers with the 'spawn' method")

    def _bound(self) -> tuple[object, np.ndarray, threading.Lock]:
        """This thread's request with an input tensor bound once, and its fork-gate lock; the hot path copies 4 KB
        into it (~6 µs less than wrapping a new ov.Tensor around each call's array)."""
        try:
            return self._local.bound
        except AttributeError:
            request = self._compiled.create_infer_request()
            tensor = self._tensor(np.zeros(self._bound_shape, dtype=np.float32))
            request.set_input_tensor(tensor)
            self._local.bound = (request, tensor.data, self._gate.lock())
            return self._local.bound

    def _free(self) -> tuple[object, threading.Lock]:
        """This thread's request for other batch sizes (a dynamic-batch file run with N crops at once)."""
        try:
            return self._local.free
        except AttributeError:
            self._local.free = (self._compiled.create_infer_request(), self._gate.lock())
            return self._local.free

    def _run_direct(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape == self._bound_shape:
            request, buffer, lock = self._bound()
            with lock:
                buffer[...] = batch
                request.infer()
                out = request.get_output_tensor(0).data
                # The output buffer belongs to the request and is overwritten by its next call: copy it out.
                return out.reshape(-1).astype(np.float32, copy=True)
        request, lock = self._free()
        with lock:
            request.set_input_tensor(self._tensor(np.ascontiguousarray(batch), shared_memory=True))
            request.infer()
            return request.get_output_tensor(0).data.reshape(-1).astype(np.float32, copy=True)


def load(source: ModelFiles | Path, threads: int) -> OpenVinoRunner:
    """Compile an IR (.xml and its .bin) for the CPU in f32 with ``threads`` inference threads."""
    return OpenVinoRunner(source, threads)
