"""The public API: ``EyeState().predict(crop) -> EyePrediction``.

Everything the model needs (preprocessing contract, threshold, temperature, labels) comes from the verified bundle;
the user only says which bundle, and optionally which backend/precision/threads. ``predict`` is the hot path for a
tiny model, where Python overhead is a large share of the latency, so everything it needs is precomputed in
``__init__`` as plain attributes: no manifest lookups, no logging, no locks of its own (each backend's runner is
thread-safe), no branches beyond the input type check.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import selection, tune
from .bundle import Bundle, load_bundle, load_default_bundle
from .errors import BackendRuntimeError, InvalidCropError
from .preprocess import ACCEPTED, MAX_SIDE, MIN_SIDE, preprocess_grey, to_grey

Crop = Any  # np.ndarray | str | os.PathLike | PIL.Image.Image (PIL is never imported here)
_PREPROCESS_CHUNK = 64
_MAX_CHUNK = 1024  # crops per backend call in predict_batch: bounds memory, amortises the per-call overhead


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


def _pil_pixels(image: Any) -> np.ndarray:
    """A PIL image -> uint8 grey or RGB with the same mode handling as files (16-bit scaled, alpha dropped).

    A PIL image decodes lazily, so a truncated file behind it, a closed image or a mode Pillow cannot convert fails
    only here: that is the caller's bad crop (InvalidCropError), as the same file passed by path would be. Sides are
    checked before decoding, so an oversized image is refused without being decoded.
    """
    from .imagefile import _DECODE_ERRORS, _to_array

    width, height = image.size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise InvalidCropError(f"crop is {height}x{width} pixels; sides must be {MIN_SIDE}..{MAX_SIDE}")
    try:
        return _to_array(image)
    except _DECODE_ERRORS as exc:
        raise InvalidCropError(f"cannot read the PIL image ({type(exc).__name__}: {exc})") from exc


class EyeState:
    """Eye open/closed classifier on the best backend for this device.

    Args:
        model: bundle directory (or a loaded Bundle); None means the embedded default bundle.
        backend: "auto", "onnxruntime", "openvino" or "tflite". Explicit and not installed raises
            BackendUnavailableError; "auto" walks the device's candidate order (a cached ``eyesdk tune`` winner first).
        precision: "auto", "fp32", "fp16" or "int8".
        threads: runtime threads; 1 is fastest for batch-1 calls of a net this small.
        color: channel order of 3/4-channel numpy crops, "bgr" (OpenCV) or "rgb". PIL images and files are RGB.
        autotune: time the candidates on this device first when no cached tuning exists (then cache it).
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
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}")
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
        self.rejected: list[tuple[selection.Candidate, str]] = chosen.rejected
        self._runner = chosen.runner
        self._run = chosen.runner.run
        self._contract = bundle.contract
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
        grey = to_grey(crop, self.color) if type(crop) is np.ndarray else self._grey(crop)
        x = preprocess_grey(grey, self._contract)
        try:  # free unless it raises (Python 3.11+ zero-cost try)
            z = float(self._run(x.reshape(1, 1, self._size, self._size))[0])
        except Exception as exc:
            raise self._runtime_error(exc) from exc
        p = _sigmoid(z * self._inv_t)
        is_open = p >= self.threshold
        return EyePrediction(is_open, p, self._labels[is_open], z)

    def _runtime_error(self, exc: Exception) -> BackendRuntimeError:
        """A backend failure with its context. No silent switch to another backend: that could change answers."""
        return BackendRuntimeError(
            f"{self.backend} {self.precision} ({self.artifact['file']} of bundle {self.bundle.name!r}) failed while "
            f"running: {type(exc).__name__}: {exc}"
        )

    def _prediction(self, z: float) -> EyePrediction:
        p = _sigmoid(z * self._inv_t)
        is_open = p >= self.threshold
        return EyePrediction(is_open, p, self._labels[is_open], z)

    # -- other input forms --------------------------------------------------------------------------------------

    def _grey(self, crop: Crop) -> np.ndarray:
        """Any accepted non-plain-ndarray crop -> float32 grey (H, W) via the one preprocessing path."""
        if isinstance(crop, np.ndarray):  # ndarray subclasses (memmap, ...)
            return to_grey(np.asarray(crop), self.color)
        if type(crop).__module__.startswith("PIL."):  # checked by name: PIL is never imported just to test this
            return to_grey(_pil_pixels(crop), "rgb")
        if isinstance(crop, (str, os.PathLike)):
            from .imagefile import read_image

            return to_grey(read_image(crop), "rgb")
        raise InvalidCropError(f"cannot classify a {type(crop).__name__}; accepted: {ACCEPTED}")

    def _preprocess_many(self, crops: Any) -> np.ndarray:
        """Crops -> (N, size, size) float32; one vectorized preprocess call when they share a shape."""
        if isinstance(crops, np.ndarray):
            return self._preprocess_stack(crops)
        if isinstance(crops, (str, bytes)) or not isinstance(crops, Iterable):
            raise InvalidCropError(
                f"predict_batch takes a list of crops or an N x H x W array, got {type(crops).__name__}"
            )
        greys = []
        for i, crop in enumerate(crops):
            try:
                greys.append(to_grey(crop, self.color) if type(crop) is np.ndarray else self._grey(crop))
            except InvalidCropError as exc:
                raise InvalidCropError(f"crop {i}: {exc}") from exc
        size = self._size
        if not greys:
            return np.empty((0, size, size), dtype=np.float32)
        shape = greys[0].shape
        if all(g.shape == shape for g in greys):
            return preprocess_grey(np.stack(greys), self._contract)
        return np.stack([preprocess_grey(g, self._contract) for g in greys])

    def _preprocess_stack(self, stack: np.ndarray) -> np.ndarray:
        if stack.ndim == 4:  # N x H x W x C: per-crop channel handling, then one resize
            return self._preprocess_many(list(stack))
        if stack.ndim != 3:
            raise InvalidCropError(
                f"predict_batch array has shape {stack.shape}; accepted: N x H x W or N x H x W x C (a stack of "
                "crops), or a list of crops; for a single crop use predict()"
            )
        n, h, w = stack.shape
        if n == 0:  # no pixels: nothing to resize (a resize matrix for 0 x 8 x 2**26 crops alone would be 8 GiB)
            return np.empty((0, self._size, self._size), dtype=np.float32)
        if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
            raise InvalidCropError(f"crops are {h}x{w} pixels; sides must be {MIN_SIDE}..{MAX_SIDE}")
        if stack.dtype != np.uint8:  # floats need to_grey's range and finiteness checks
            return self._preprocess_many(list(stack))
        return preprocess_grey(stack, self._contract)

    def predict_batch(self, crops: Sequence[Crop] | np.ndarray) -> list[EyePrediction]:
        """Classify many crops: a list of any accepted crops, or an N x H x W (x C) array stack."""
        if isinstance(crops, np.ndarray) and crops.ndim >= 3 and len(crops) > _PREPROCESS_CHUNK:
            # Stacks are preprocessed a cache-sized slice at a time: one 256 x 90 x 90 float copy is ~8 MB.
            return [p for i in range(0, len(crops), _PREPROCESS_CHUNK)
                    for p in self.predict_batch(crops[i : i + _PREPROCESS_CHUNK])]
        x = self._preprocess_many(crops)
        if x.shape[0] == 0:
            return []
        z = self.logits(x.reshape(x.shape[0], 1, self._size, self._size))
        return [self._prediction(v) for v in z.tolist()]

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
        batch = np.ascontiguousarray(batch)
        n = batch.shape[0]
        if n == 0:  # nothing to run; fixed-batch files and some runtimes refuse an empty batch
            return np.empty(0, dtype=np.float32)
        try:
            if n <= _MAX_CHUNK:
                return np.array(self._run(batch), dtype=np.float32).reshape(n)
            return np.concatenate([self._run(batch[i : i + _MAX_CHUNK]) for i in range(0, n, _MAX_CHUNK)])
        except Exception as exc:
            raise self._runtime_error(exc) from exc
