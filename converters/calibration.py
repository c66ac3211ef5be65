"""One calibration data path for every quantizer: preprocessed crops in, thin adapters out.

The crops are what the model sees at runtime (``eyesdk.preprocess`` output, (1, 1, S, S) float32 each), so
ONNX Runtime's ``quantize_static``, NNCF and the PT2E observers behind the TFLite int8 file all calibrate on the
same samples in the same order. Each quantizer gets a thin adapter (:func:`ort_reader`, :func:`nncf_dataset`,
:func:`calibrate_pt2e`) instead of its own copy of the data handling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULT_LIMIT = 300  # ORT/NNCF need a few hundred samples for stable min/max ranges; more only costs time


class CalibrationSet:
    """A re-iterable sequence of preprocessed crops, each yielded as a C-contiguous (1, 1, S, S) float32 array.

    ``items`` may be one (N, 1, S, S) or (N, S, S) array, or any iterable of single crops (1, 1, S, S), (S, S)
    or batches (B, 1, S, S); ``transform`` (optional) is applied to each item first, e.g. ``preprocess`` to
    calibrate from raw crops. Items are materialised once (a few hundred 32x32 crops is a few MB) so every
    quantizer can make its own pass. With ``limit``, an evenly spaced subset is kept, deterministically.
    """

    def __init__(
        self,
        items: np.ndarray | Iterable[Any],
        transform: Callable[[Any], np.ndarray] | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be a positive number of crops or None; got {limit!r}")
        if isinstance(items, np.ndarray) and transform is None:
            crops = _as_crops(items, "calibration array")
        else:
            chunks = [_as_crops(transform(item) if transform else item, f"calibration item {i}")
                      for i, item in enumerate(items)]
            if not chunks:
                raise ValueError("calibration data is empty; int8 export needs at least one preprocessed crop")
            sizes = {c.shape[1:] for c in chunks}
            if len(sizes) > 1:
                raise ValueError(f"calibration crops have different shapes {sorted(sizes)}; all must be (1, S, S)")
            crops = np.concatenate(chunks)
        if len(crops) == 0:
            raise ValueError("calibration data is empty; int8 export needs at least one preprocessed crop")
        if limit is not None and len(crops) > limit:
            crops = crops[np.linspace(0, len(crops) - 1, limit).round().astype(np.int64)]
        self._crops = np.ascontiguousarray(crops, dtype=np.float32)

    @property
    def size(self) -> int:
        """Side S of the square crops."""
        return int(self._crops.shape[-1])

    @property
    def array(self) -> np.ndarray:
        """All crops as one (N, 1, S, S) float32 array."""
        return self._crops

    def __len__(self) -> int:
        return len(self._crops)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self._crops)):
            yield self._crops[i : i + 1]


def _as_crops(item: Any, where: str) -> np.ndarray:
    """Normalise one item to (B, 1, S, S) float32, refusing anything that is not a preprocessed square crop."""
    arr = np.asarray(item)
    if arr.dtype.kind != "f":
        raise ValueError(f"{where} has dtype {arr.dtype}; expected float32 crops from eyesdk.preprocess")
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] != 1 or arr.shape[2] != arr.shape[3]:
        raise ValueError(
            f"{where} has shape {np.shape(item)}; expected (S, S), (N, S, S) or (N, 1, S, S) preprocessed crops"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{where} contains NaN or infinite values")
    return arr.astype(np.float32, copy=False)


def as_calibration_set(data: CalibrationSet | np.ndarray | Iterable[Any], limit: int | None = DEFAULT_LIMIT
                       ) -> CalibrationSet:
    """Accept a ready CalibrationSet unchanged, or wrap an array / iterable of crops."""
    return data if isinstance(data, CalibrationSet) else CalibrationSet(data, limit=limit)


def ort_reader(calib: CalibrationSet, input_name: str) -> Any:
    """ONNX Runtime ``CalibrationDataReader`` over the set: one ``{input_name: crop}`` feed per call."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._iter = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            crop = next(self._iter, None)
            return None if crop is None else {input_name: crop}

        def rewind(self) -> None:
            self._iter = iter(calib)

    return _Reader()


def nncf_dataset(calib: CalibrationSet) -> Any:
    """``nncf.Dataset`` over the set (NNCF's own "iterable + transform" shape; the transform is the identity)."""
    import nncf

    return nncf.Dataset(calib)


def calibrate_pt2e(prepared: torch.nn.Module, calib: CalibrationSet) -> None:
    """Run the observers of a PT2E-prepared module over the set, one crop at a time (the export batch is 1)."""
    import torch

    with torch.no_grad():
        for crop in calib:
            prepared(torch.from_numpy(crop))
