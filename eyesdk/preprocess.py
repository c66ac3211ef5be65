"""The one preprocessing path: crop -> model input. Training, export calibration, runtime and benchmarks call it.

Only numpy: grey conversion with ITU-R 601 weights (as OpenCV), an antialiased triangle-filter resize done as two
small precomputed weight-matrix products (identical on every machine, no image library), then per-crop
standardisation, which removes most of the brightness and contrast differences between infrared and visible cameras.

Where a crop goes: ``to_grey`` is the one function that turns any accepted crop - an array of any accepted form, a
PIL image or an image file's path - into float32 grey pixels. Arrays are handled here; a PIL image or a path is first
decoded by ``eyesdk.imagefile`` (imported only then) into an array, which then takes the same array path. The way
is one-way: nothing after ``to_grey`` looks at what form the crop came in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, NoReturn

import numpy as np

from .errors import InvalidCropError

MIN_SIDE = 8
MAX_SIDE = 8192
MAX_MODEL_SIZE = 512  # the largest model input side a contract may ask for
ACCEPTED = (
    "a numpy array H x W, H x W x 1, H x W x 3 (BGR, or RGB with color='rgb') or H x W x 4, dtype uint8 "
    "(0..255) or float (0..1), sides 8..8192; a PIL.Image; or a path to an image file"
)
_GREY_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # B, G, R weights (ITU-R 601, as cv2)
# Colour crops above this many pixels are converted to grey a band of rows at a time, so no float32 copy of all
# their channels is ever made (12 bytes per pixel); below it, the whole crop in one call is the faster way.
STRIP_PIXELS = 1 << 18
_STRIP_ROWS = 64


@dataclass(frozen=True)
class PreprocessContract:
    """What the model expects; written into every bundle manifest and artifact's metadata."""

    size: int = 32
    color: str = "grey"
    grey_weights: str = "bt601"
    resize: str = "triangle-antialias"
    normalization: str = "per-crop-standardize"
    std_floor: float = 0.02
    layout: str = "NCHW"
    dtype: str = "float32"
    # True: the artifact standardizes its own input (inside the exported graph, the same arithmetic as
    # `standardize`), so the runtime feeds it resize_grey's output and skips the numpy call (5-6 µs at batch 1,
    # docs/performance.md).
    # Bundles written before this field existed lack it: False, today's path.
    normalization_in_model: bool = False

    def __post_init__(self) -> None:
        # Checked here, not where they are used: a std_floor of 0 divided by zero in predict and gave NaN
        # probabilities labelled "closed" in predict_batch; a size of 24.0 failed every call in the runtime.
        size, floor = self.size, self.std_floor
        if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIDE <= size <= MAX_MODEL_SIZE:
            raise ValueError(f"size must be an int in {MIN_SIDE}..{MAX_MODEL_SIZE}, got {size!r}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not (math.isfinite(floor) and floor > 0):
            raise ValueError(f"std_floor must be a finite number > 0, got {floor!r}")
        if not isinstance(self.normalization_in_model, bool):
            raise ValueError(f"normalization_in_model must be true or false, got {self.normalization_in_model!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; ``normalization_in_model`` only when True, so a contract with today's path
        serializes exactly as before the field existed (older bundles, artifact metadata and crop caches match)."""
        data = asdict(self)
        if not self.normalization_in_model:
            del data["normalization_in_model"]
        return data

    def as_trained(self) -> PreprocessContract:
        """This contract with standardization in the runtime: what training, crop caches and packs are made with
        (where an artifact standardizes its input is an export choice; the crops and the model are the same)."""
        return replace(self, normalization_in_model=False)

    def same_crops(self, other: PreprocessContract) -> bool:
        """Whether the two describe the same model inputs up to where standardization runs (packs, caches and
        prepared data are compared with this: a bundle that standardizes in its graph reads the same crops)."""
        return self.as_trained() == other.as_trained()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessContract:
        """The contract a manifest describes; refused unless this eyesdk implements it. A field this eyesdk does
        not know is refused too: it comes from a newer eyesdk and changes what the model must be fed."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"preprocessing contract field(s) {unknown} are unknown to this eyesdk (made by a newer "
                             f"one?); it knows {sorted(cls.__dataclass_fields__)}")
        contract = cls(**data)
        expected = cls(size=contract.size, std_floor=contract.std_floor,
                       normalization_in_model=contract.normalization_in_model)
        if contract != expected:
            raise ValueError(f"unsupported preprocessing contract {data}; this eyesdk implements {expected.to_dict()}")
        return contract


DEFAULT_CONTRACT = PreprocessContract()


# Resize matrices are cached per (input side, output side). Sides up to RESIZE_CACHE_SIDE (every eye crop a
# detector hands over) keep up to 256 entries (<= 16 MiB at size 32); larger sides keep only the 4 most recent, so a
# stream of ever-different huge crops cannot pin hundreds of MB (one 8192-side matrix is 1 MiB, and for a crop that
# size rebuilding it costs ~1 % of the crop's own preprocessing).
RESIZE_CACHE_SIDE = 512


def _triangle_weights(n_in: int, n_out: int) -> np.ndarray:
    scale = n_in / n_out
    support = max(scale, 1.0)
    centers = (np.arange(n_out, dtype=np.float64) + 0.5) * scale
    src = np.arange(n_in, dtype=np.float64) + 0.5
    weights = np.clip(1.0 - np.abs(src[None, :] - centers[:, None]) / support, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


def _two_tier_cache(build: Callable[[int, int], np.ndarray]) -> Callable[[int, int], np.ndarray]:
    """Cache many small-side matrices but only the last few large ones, so huge crops cannot pin memory."""
    small, large = lru_cache(maxsize=256)(build), lru_cache(maxsize=4)(build)

    def cached(n_in: int, n_out: int) -> np.ndarray:
        return (small if n_in <= RESIZE_CACHE_SIDE else large)(n_in, n_out)

    return cached


_cached_weights = _two_tier_cache(_triangle_weights)


def resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """Row-stochastic (n_out, n_in) matrix of an antialiased triangle (bilinear) filter, as PIL's BILINEAR."""
    return _cached_weights(n_in, n_out)


def _refuse_range(lo: float, hi: float) -> NoReturn:
    raise InvalidCropError(f"float crop has values in [{lo:.3g}, {hi:.3g}]; float crops must lie in [0, 1]")


def check_sides(h: int, w: int, subject: str = "crop is") -> None:
    """The one side-length rule for every crop form (arrays, stacks, PIL images, files): 8..8192 pixels."""
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise InvalidCropError(f"{subject} {h}x{w} pixels; sides must be {MIN_SIDE}..{MAX_SIDE}")


def _as_array(crop: Any, color: str) -> tuple[np.ndarray, str]:
    """A crop that is not a plain ndarray -> (array, its channel order): ndarray subclasses as they are, PIL images
    and image files decoded by eyesdk.imagefile (RGB, whatever ``color`` says); anything else is refused."""
    if isinstance(crop, np.ndarray):  # memmap, matrix subclasses, ...
        return np.asarray(crop), color
    if type(crop).__module__.startswith("PIL."):  # checked by name: PIL is never imported just to test this
        from .imagefile import pil_pixels

        return pil_pixels(crop), "rgb"
    if isinstance(crop, (str, os.PathLike)):
        from .imagefile import read_image

        return read_image(crop), "rgb"
    raise InvalidCropError(f"cannot classify a {type(crop).__name__}; accepted: {ACCEPTED}")


def to_grey(crop: Any, color: str = "bgr") -> np.ndarray:
    """Any accepted crop -> validated float32 grey in [0, 255], shape (H, W): the one place a crop's form is handled.

    ``color`` is the channel order of 3/4-channel arrays; PIL images and files are RGB whatever it says.
    """
    if type(crop) is not np.ndarray:  # the plain-array hot path pays this one comparison, nothing more
        crop, color = _as_array(crop, color)
    if color not in ("bgr", "rgb"):
        raise InvalidCropError(f"color must be 'bgr' or 'rgb', got {color!r}")
    if crop.ndim == 3 and crop.shape[2] in (1, 3, 4):
        channels = crop.shape[2]
    elif crop.ndim == 2:
        channels = 0
    else:
        raise InvalidCropError(f"crop has shape {crop.shape}; accepted: {ACCEPTED}")
    h, w = crop.shape[:2]
    check_sides(h, w)
    if channels > 1 and h * w > STRIP_PIXELS:  # a large colour crop: a band of rows at a time
        grey = np.empty((h, w), dtype=np.float32)
        for i in range(0, h, _STRIP_ROWS):
            grey[i : i + _STRIP_ROWS] = _grey_of(crop[i : i + _STRIP_ROWS], channels, color, crop)
        return grey
    return _grey_of(crop, channels, color, crop)


def _bgr(crop: np.ndarray, channels: int, color: str) -> np.ndarray:
    """A colour crop's B, G, R channels in that order (a view), whatever its order: an RGB crop and the same pixels
    as BGR then give the same bits. Alpha is dropped; grey crops pass through."""
    if channels < 3:
        return crop
    if color == "rgb":
        return crop[:, :, 2::-1]
    return crop[:, :, :3] if channels == 4 else crop


def _grey_of(part: np.ndarray, channels: int, color: str, whole: np.ndarray) -> np.ndarray:
    """Pixels of a checked crop (or a band of its rows) -> float32 grey; errors describe the ``whole`` crop."""
    h, w = part.shape[:2]
    part = _bgr(part, channels, color)
    # order="C" whatever the input's memory layout (strided view, transpose, Fortran): astype would keep the layout,
    # and the matrix products below then sum in another order: the same pixels must give the same bits.
    if part.dtype == np.uint8:
        pixels = part.astype(np.float32, order="C")
    elif part.dtype.kind == "f":
        if part.dtype.itemsize > 4:  # float64 beyond float32's range becomes inf with a RuntimeWarning: refused below
            with np.errstate(over="ignore"):
                pixels = part.astype(np.float32, order="C")
        else:
            pixels = part.astype(np.float32, order="C")
        if not np.isfinite(pixels).all():
            whole = _bgr(whole, channels, color)
            if np.isfinite(whole).all():  # finite in its own dtype: out of range, and the message must say so
                _refuse_range(float(whole.min()), float(whole.max()))
            raise InvalidCropError("crop contains NaN or infinite values; float crops must be finite in [0, 1]")
        lo, hi = float(pixels.min()), float(pixels.max())
        if lo < 0.0 or hi > 1.0:
            if part.shape[:2] != whole.shape[:2]:  # a band: the message gives the whole crop's range
                whole = _bgr(whole, channels, color)
                lo, hi = float(whole.min()), float(whole.max())
            _refuse_range(lo, hi)
        pixels *= 255.0
    else:
        raise InvalidCropError(f"crop dtype {part.dtype} is not supported; accepted: uint8 (0..255) or float (0..1)")
    if channels == 0:  # already (h, w): the predict() hot path for grey crops
        return pixels
    if channels == 1:
        return pixels.reshape(h, w)
    return pixels @ _GREY_BGR


def standardize(resized: np.ndarray, std_floor: float) -> np.ndarray:
    """Per-crop zero mean / unit variance over the last two axes of crops in [0, 255].

    std_floor is in units of [0, 1] pixels, so near-uniform crops are not blown up into noise. One crop and a stack
    of crops go through the same arithmetic, so predict() and predict_batch() agree to the bit: float32 sums and
    mean, the sum of squares as one dot product per crop (``np.dot`` for one, a batched ``matmul`` of the same
    products for many), standard deviation and scale in float64, the scale applied in float32. The one-crop branch
    is the predict() hot path: four numpy calls, scalars in Python (about 2x faster than ndarray.mean/std).
    """
    shape = resized.shape
    n = shape[-1] * shape[-2]
    floor = std_floor * 255.0
    if resized.ndim == 2:
        pixels = resized.astype(np.float32, copy=False)
        centered = pixels - pixels.sum() / np.float32(n)
        flat = centered.ravel()
        std = math.sqrt(float(np.dot(flat, flat)) / n)
        return centered * np.float32(1.0 / max(std, floor))
    flat = resized.reshape(-1, n).astype(np.float32, copy=False)
    centered = flat - flat.sum(axis=1, keepdims=True) / np.float32(n)
    squares = np.matmul(centered[:, None, :], centered[:, :, None]).reshape(-1)  # per crop: np.dot's own result
    std = np.sqrt(squares.astype(np.float64) / n)
    scale = (1.0 / np.maximum(std, floor)).astype(np.float32)
    return (centered * scale[:, None]).reshape(shape)


def _transposed(n_in: int, n_out: int) -> np.ndarray:
    weights = np.ascontiguousarray(resize_weights(n_in, n_out).T)
    weights.setflags(write=False)
    return weights


_transposed_weights = _two_tier_cache(_transposed)


def resize_grey(grey: np.ndarray, size: int) -> np.ndarray:
    """Grey image(s) (..., H, W) -> (..., size, size) float32, same value range; the contract's resize step."""
    h, w = grey.shape[-2:]
    pixels = grey.astype(np.float32, order="C", copy=False)  # layout-independent bits, as in to_grey
    rows, cols = resize_weights(h, size), _transposed_weights(w, size)
    # Rows first, (size x H) @ (H x W), then @ (W x size): 10-25 % faster than columns first for one crop and for
    # 64-crop stacks at 90x90 (OpenBLAS, 1 thread). One crop takes np.dot (the same sgemm as a stack's matmul, so
    # the same bits, with ~0.7 µs less call overhead: this is the predict() hot path).
    if pixels.ndim == 2:
        return np.dot(np.dot(rows, pixels), cols)
    return (rows @ pixels) @ cols


def standardize_step(contract: PreprocessContract = DEFAULT_CONTRACT) -> Callable[[np.ndarray], np.ndarray]:
    """What follows ``resize_grey`` under this contract: ``standardize``, or nothing where the artifact standardizes
    its own input (``normalization_in_model``). For callers that resize themselves (the stream layer, benchmarks)."""
    if contract.normalization_in_model:
        return _unchanged
    floor = contract.std_floor
    return lambda resized: standardize(resized, floor)


def _unchanged(resized: np.ndarray) -> np.ndarray:
    return resized


def model_feed(contract: PreprocessContract = DEFAULT_CONTRACT) -> Callable[[np.ndarray], np.ndarray]:
    """The contract's way from grey image(s) (..., H, W) in [0, 255] to what its artifacts take, chosen once.

    ``standardize(resize_grey(...))``, or ``resize_grey`` alone where the artifact standardizes its own input
    (``normalization_in_model``). The runtime binds it in ``EyeState.__init__``, so no call branches on it.
    """
    size, floor = contract.size, contract.std_floor
    if contract.normalization_in_model:
        return lambda grey: resize_grey(grey, size)
    return lambda grey: standardize(resize_grey(grey, size), floor)


def preprocess_grey(grey: np.ndarray, contract: PreprocessContract = DEFAULT_CONTRACT) -> np.ndarray:
    """Grey float/uint8 image(s) (..., H, W) in [0, 255] -> the (..., size, size) float32 the contract's artifacts
    take: standardized, or resized only where the artifact standardizes itself (see ``model_feed``).

    Training augments between the two steps (resize_grey, then standardize) and calls the same two functions.
    """
    return model_feed(contract)(grey)


def preprocess(crop: Any, contract: PreprocessContract = DEFAULT_CONTRACT, color: str = "bgr") -> np.ndarray:
    """One crop (any form ``to_grey`` accepts) -> the artifact's input of shape (1, 1, size, size), float32."""
    return preprocess_grey(to_grey(crop, color), contract)[None, None]
