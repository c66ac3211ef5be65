"""The public API: ``EyeState().predict(crop) -> EyePrediction``.

Everything the model needs (preprocessing contract, threshold, temperature, labels) comes from the verified bundle;
the user only says which bundle, and optionally which backend/precision/threads. ``predict`` is the hot path for a
tiny model, where Python overhead is a large share of the latency, so everything it needs is precomputed in
``__init__`` as plain attributes: no manifest lookups, no logging, no locks of its own (each backend's runner is
thread-safe), no branches beyond the input type check.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import blas, selection, tune
from .backends.base import check_threads
from .bundle import Bundle, load_bundle, load_default_bundle
from .errors import BackendRuntimeError, InvalidCropError
from .preprocess import check_sides, model_feed, to_grey

Crop = Any  # np.ndarray | str | os.PathLike | PIL.Image.Image (PIL is never imported here)
# Crops preprocessed (and run) together in predict_batch, whether they come as a list or a stack: memory stays a
# chunk's worth however long the batch (one 64 x 90 x 90 float copy is ~2 MB).
_PREPROCESS_CHUNK = 64
_MAX_CHUNK = 1024  # crops per backend call in logits(): bounds memory, amortises the per-call overhead
# From this many crops a call goes to the batch runner (a dynamic-batch artifact beside a fixed-batch winner). Measured
# on the default bundle, µs per call, LiteRT batch-1 invokes vs one ONNX Runtime call: n=1 15 vs 21, n=2 32 vs 29,
# n=8 144 vs 75, n=32 853 vs 401 (docs/performance.md): one crop stays on the predict runner, two already do not.
_BATCH_MIN = 2


@dataclass(frozen=True, slots=True)
class EyePrediction:
    """One crop's result. prob_open = sigmoid(logit / temperature), calibrated; is_open = prob_open >= threshold."""

    is_open: bool
    prob_open: float
    label: str  # "open" | "closed"
    logit: float  # the artifact's raw logit, before temperature scaling


def _sigmoid(t: float) -> float:
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


class EyeState:
    """Eye open/closed classifier on the best backend for this device.

    Args:
        model: bundle directory (or a loaded Bundle); None means the embedded default bundle.
        backend: "auto", "onnxruntime", "openvino" or "tflite". Explicit and not installed raises
            BackendUnavailableError; "auto" walks the device's candidate order (a cached ``eyesdk tune`` winner first).
        precision: "auto", "fp32", "fp16" or "int8".
        threads: runtime threads, 1..the machine's CPUs; 1 is fastest for batch-1 calls of a net this small. With
            2 or more, ``predict_batch`` pipelines: it preprocesses the next chunk in the calling thread while a
            worker thread runs the model on the current one (OpenBLAS held to one thread meanwhile).
        color: channel order of 3/4-channel numpy crops, "bgr" (OpenCV) or "rgb". PIL images and files are RGB.
        autotune: time the candidates on this device first when no cached tuning exists (then cache it).

    One EyeState may be shared by any number of threads. A process forked from one holding it (gunicorn --preload,
    multiprocessing's "fork") re-creates its runtime on its first call (docs/reliability.md, 3.).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Bundle | None = None,
        backend: str = "auto",
        precision: str = "auto",
        threads: int = 1,
        color: str = "bgr",
        autotune: bool = False,
    ) -> None:
        if color not in ("bgr", "rgb"):
            raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
        check_threads(threads)
        selection.check_choice(backend, precision)
        if isinstance(model, Bundle):
            bundle = model
        elif model is None:
            bundle = load_default_bundle()
        else:
            bundle = load_bundle(model)

        preferred = None
        if selection.AUTO in (backend, precision):
            preferred = tune.tuned_choice(bundle, threads) if autotune else tune.cached_choice(bundle, threads)
        chosen = selection.select(bundle, backend, precision, threads, preferred=preferred)

        self.bundle: Bundle = bundle
        self.backend: str = chosen.candidate.backend
        self.precision: str = chosen.candidate.precision
        self.artifact: dict[str, Any] = chosen.artifact
        self.temperature: float = float(chosen.artifact["temperature"])
        self.threshold: float = bundle.threshold
        self.threads: int = threads
        self.color: str = color
        self.rejected: list[tuple[selection.Candidate, selection.Rejection]] = chosen.rejected
        self._runner = chosen.runner
        self._run = chosen.runner.run
        # Batches: a fixed-batch winner (TFLite) would run a 256-stack as 256 invokes, so `auto` picks a dynamic-batch
        # artifact of the same precision for them, once, here (an explicit backend runs everything itself).
        batch = (selection.select_batch_runner(bundle, chosen, max(1, threads - 1)) if backend == selection.AUTO
                 else selection.BatchSelection(reason=f"backend={backend!r} was requested"))
        self.batch_backend: str = batch.candidate.backend if batch.candidate else self.backend
        self.batch_artifact: dict[str, Any] = batch.artifact if batch.artifact is not None else self.artifact
        self.batch_rejected: list[tuple[selection.Candidate, selection.Rejection]] = batch.rejected
        self.batch_reason: str = batch.reason  # why batches run on the predict runner, when they do
        self._run_batch: Callable[[np.ndarray], np.ndarray] = (batch.runner or chosen.runner).run
        self.pipelined: bool = threads >= 2  # predict_batch overlaps preprocessing with the model (see threads)
        self._worker: ThreadPoolExecutor | None = None
        self._worker_pid = 0
        self._feed = model_feed(bundle.contract)  # resize (+ standardize unless the artifact does it), chosen once
        self._size = bundle.contract.size
        self._inv_t = 1.0 / self.temperature
        self._labels = bundle.labels  # ("closed", "open"): index = is_open

    def __repr__(self) -> str:
        return (
            f"EyeState(model={str(self.bundle.path)!r}, backend={self.backend!r}, precision={self.precision!r}, "
            f"threads={self.threads})"
        )

    # -- hot path ---------------------------------------------------------------------------------------------

    def predict(self, crop: Crop) -> EyePrediction:
        """Classify one eye crop (see ``eyesdk.preprocess.ACCEPTED`` for the accepted forms)."""
        x = self._feed(to_grey(crop, self.color))
        try:  # free unless it raises (Python 3.11+ zero-cost try)
            z = float(self._run(x.reshape(1, 1, self._size, self._size))[0])
        except Exception as exc:
            raise self._runtime_error(exc) from exc
        return self._prediction(z)  # one definition of calibration + decision (a method call: ~0.1 µs, measured)

    def _runtime_error(self, exc: Exception, batch: bool = False) -> BackendRuntimeError:
        """A backend failure with its context. No silent switch to another backend: that could change answers."""
        backend, artifact = (self.batch_backend, self.batch_artifact) if batch else (self.backend, self.artifact)
        return BackendRuntimeError(
            f"{backend} {self.precision} ({artifact['file']} of bundle {self.bundle.name!r}) failed while "
            f"running: {type(exc).__name__}: {exc}"
        )

    def _prediction(self, z: float) -> EyePrediction:
        """A logit -> calibrated P(open), the bundle's decision and label: predict and predict_batch alike."""
        p = _sigmoid(z * self._inv_t)
        is_open = p >= self.threshold
        return EyePrediction(is_open, p, self._labels[is_open], z)

    # -- batches ----------------------------------------------------------------------------------------------

    def predict_batch(self, crops: Sequence[Crop] | np.ndarray) -> list[EyePrediction]:
        """Classify many crops: a list (or any iterable) of accepted crops, or an N x H x W (x C) array stack.

        Both are taken ``_PREPROCESS_CHUNK`` crops at a time, so memory does not grow with the batch; an error names
        the crop's own index in the batch. With ``threads >= 2`` the next chunk is preprocessed while the model runs
        on the current one (results and errors are those of the one-chunk-after-another order).
        """
        results: list[EyePrediction] = []
        # One chunk has nothing to overlap: the worker round-trip would only add to it (2 crops: 125 -> ~200 µs).
        if self.pipelined and not (hasattr(crops, "__len__") and len(crops) <= _PREPROCESS_CHUNK):
            for z in self._pipelined_logits(crops):
                results.extend(self._prediction(v) for v in z.tolist())
            return results
        for start, chunk in _chunks(crops):
            x = self._preprocess_chunk(chunk, start)
            if x.shape[0]:
                z = self._logits(x.reshape(x.shape[0], 1, self._size, self._size))
                results.extend(self._prediction(v) for v in z.tolist())
        return results

    def _pipelined_logits(self, crops: Sequence[Crop] | np.ndarray) -> Iterator[np.ndarray]:
        """Each chunk's logits, in order; chunk k+1 is preprocessed here while the worker runs chunk k (numpy's
        matrix products and the runtimes release the GIL). A crop error waits for the chunk before it, so a backend
        error there is raised first, as it would be one chunk after another."""
        worker = self._batch_worker()
        pending: Future[np.ndarray] | None = None
        with blas.single_threaded():
            try:
                for start, chunk in _chunks(crops):
                    try:
                        x = self._preprocess_chunk(chunk, start)
                    except BaseException:
                        if pending is not None:
                            pending.result()
                        raise
                    if pending is not None:
                        yield pending.result()
                        pending = None
                    if x.shape[0]:
                        pending = worker.submit(self._logits, x.reshape(x.shape[0], 1, self._size, self._size))
                if pending is not None:
                    yield pending.result()
                    pending = None
            finally:
                if pending is not None:  # the caller stopped early or raised: never leave the worker's call behind
                    pending.exception()

    def _batch_worker(self) -> ThreadPoolExecutor:
        """The pipeline's worker thread, made on first use and again in a forked child (threads do not survive
        fork; the parent's executor is left alone there, never joined)."""
        worker, pid = self._worker, os.getpid()
        if worker is None or self._worker_pid != pid:  # two first calls at once may both make one: either serves
            worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eyesdk-batch")
            self._worker, self._worker_pid = worker, pid
        return worker
    def _preprocess_chunk(self, chunk: list[Crop] | np.ndarray, start: int) -> np.ndarray:
        """Up to _PREPROCESS_CHUNK crops -> (n, size, size) float32; one vectorized call when they share a shape."""
        if isinstance(chunk, np.ndarray) and chunk.ndim == 3 and chunk.dtype == np.uint8:
            n, h, w = chunk.shape  # a uint8 stack: checked once, preprocessed in one call
            check_sides(h, w, "crops are")
            return self._feed(chunk)
        greys = []
        for i, crop in enumerate(chunk):  # per crop: floats need to_grey's range checks, colour its channel order
            try:
                greys.append(to_grey(crop, self.color))
            except InvalidCropError as exc:
                raise InvalidCropError(f"crop {start + i}: {exc}") from exc
        if not greys:
            return np.empty((0, self._size, self._size), dtype=np.float32)
        shape = greys[0].shape
        if all(g.shape == shape for g in greys):
            return self._feed(np.stack(greys))
        return np.stack([self._feed(g) for g in greys])

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits (N,) float32 of an already preprocessed (N, 1, S, S) float32 batch (benchmarks, parity)."""
        size = self._size
        if not isinstance(batch, np.ndarray) or batch.dtype != np.float32 or batch.ndim != 4 or batch.shape[1:] != (
            1,
            size,
            size,
        ):
            got = f"{batch.shape} {batch.dtype}" if isinstance(batch, np.ndarray) else type(batch).__name__
            raise InvalidCropError(f"logits() takes a preprocessed float32 batch (N, 1, {size}, {size}); got {got}")
        return self._logits(np.ascontiguousarray(batch))

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """``logits`` of a batch known to be right: contiguous (N, 1, S, S) float32 (predict_batch's own chunks)."""
        n = batch.shape[0]
        if n == 0:  # nothing to run; fixed-batch files and some runtimes refuse an empty batch
            return np.empty(0, dtype=np.float32)
        on_batch_runner = n >= _BATCH_MIN
        run = self._run_batch if on_batch_runner else self._run
        try:
            if n <= _MAX_CHUNK:
                return np.array(run(batch), dtype=np.float32).reshape(n)
            return np.concatenate([run(batch[i : i + _MAX_CHUNK]) for i in range(0, n, _MAX_CHUNK)])
        except Exception as exc:
            raise self._runtime_error(exc, batch=on_batch_runner) from exc


def _chunks(crops: Any) -> Iterator[tuple[int, list[Crop] | np.ndarray]]:
    """(index of the first crop, up to _PREPROCESS_CHUNK crops) of a stack or an iterable of crops."""
    if isinstance(crops, np.ndarray):
        if crops.ndim not in (3, 4):
            raise InvalidCropError(
                f"predict_batch array has shape {crops.shape}; accepted: N x H x W or N x H x W x C (a stack of "
                "crops), or a list of crops; for a single crop use predict()"
            )
        # A stack with no crops has no pixels: nothing to check or resize (a resize matrix for 0 x 8 x 2**26 crops
        # alone would be 8 GiB).
        for start in range(0, len(crops), _PREPROCESS_CHUNK):
            yield start, crops[start : start + _PREPROCESS_CHUNK]
        return
    if isinstance(crops, (str, bytes)) or not isinstance(crops, Iterable):
        raise InvalidCropError(f"predict_batch takes a list of crops or an N x H x W array, got {type(crops).__name__}")
    iterator = iter(crops)
    for start in itertools.count(0, _PREPROCESS_CHUNK):
        chunk = list(itertools.islice(iterator, _PREPROCESS_CHUNK))
        if not chunk:
            return
        yield start, chunk
