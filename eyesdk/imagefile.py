"""Decode one image file into a uint8 array, refusing anything that is not cleanly a whole image.

Pillow comes from the `cli` extra and is imported only when a file is read, so `import eyesdk` stays light.
The result is grey (H, W) or RGB (H, W, 3) -- RGB, not OpenCV's BGR, so callers pass `color="rgb"` to
`to_grey`. Every decoding problem (empty, truncated, corrupt, not an image, too many pixels) becomes an
`InvalidCropError` naming the file, so a data loader can count bad files instead of crashing or training on
half an image.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendUnavailableError, InvalidCropError

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP")
# Far above any eye crop (an 8192 x 6104 photo), far below what could exhaust memory when decoded.
MAX_PIXELS = 50_000_000

# What Pillow's decoders raise on broken input; anything else (MemoryError, KeyboardInterrupt) propagates.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)


def _pillow() -> tuple[Any, Any]:
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:
        raise BackendUnavailableError(
            f"reading image files needs Pillow, which is not importable here ({exc}); "
            'pip install "eyesdk[cli]"'
        ) from exc
    return Image, ImageOps


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) to 0..255 with rounding, so full scale maps to full scale."""
    clipped = np.clip(values.astype(np.float64), 0.0, 65535.0)
    return np.rint(clipped * (255.0 / 65535.0)).astype(np.uint8)


def _to_array(image: Any) -> np.ndarray:
    """A loaded PIL image in any mode -> uint8 grey (H, W) or RGB (H, W, 3); alpha is dropped."""
    mode = image.mode
    if mode == "L":
        return np.array(image, dtype=np.uint8)
    if mode == "I" or mode.startswith("I;16"):
        # 16-bit PNGs open as I;16 (or I in older Pillow): scale, do not truncate.
        return _sixteen_to_eight(np.array(image))
    if mode in ("1", "LA", "La"):
        return np.array(image.convert("L"), dtype=np.uint8)
    if mode == "PA" or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")  # Pillow's advice for palettes with transparency; alpha dropped below
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)


class _ClampedReader:
    """A file whose ``read(n)`` never asks for more than the file holds.

    Pillow skips the rest of a PNG chunk with ``fp.read(declared_length)``, and a buffered ``read(n)`` allocates n
    bytes up front: a 441-byte file declaring a 2 GiB IDAT chunk made read_image allocate 2 GiB (a MemoryError on a
    32-bit board or without overcommit). Clamped, every read is bounded by the file's own size.
    """

    def __init__(self, handle: Any, size: int) -> None:
        self._handle, self._size = handle, size

    def read(self, n: int | None = -1) -> bytes:
        return self._handle.read(self._size if n is None or n < 0 or n > self._size else n)

    def __getattr__(self, name: str) -> Any:  # seek, tell, readline, ...: the file's own
        return getattr(self._handle, name)


def _open_nonblocking(path: str, flags: int) -> int:
    """Open without blocking: a FIFO opened for reading would otherwise wait forever for a writer."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a PNG, JPEG or BMP file to uint8 grey (H, W) or RGB (H, W, 3), fully or not at all.

    JPEG EXIF orientation is applied (as OpenCV's imread does), 16-bit images are scaled to 8 bits, palettes
    are expanded. Opening the path raises what ``open()`` raises (FileNotFoundError, IsADirectoryError,
    PermissionError, ...); anything else -- an empty path, a FIFO or device, content that is not cleanly a whole
    image -- raises InvalidCropError naming the file.
    """
    raw = os.fsdecode(os.fspath(path))
    if not raw or "\0" in raw:  # Path("") would mean ".", and open() raises a bare ValueError on NUL
        reason = "an empty path" if not raw else "a NUL character in the path"
        raise InvalidCropError(f"{raw!r}: not an image file path ({reason})")
    path = Path(raw)
    Image, ImageOps = _pillow()
    with open(path, "rb", opener=_open_nonblocking) as handle:  # OSErrors of opening the path propagate unchanged
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidCropError(f"{path}: not a regular file (a FIFO, device or socket), not an image")
        if info.st_size == 0:
            raise InvalidCropError(f"{path}: the file is empty (0 bytes), not an image")
        try:
            image = Image.open(_ClampedReader(handle, info.st_size), formats=ACCEPTED_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # a Warning raises under -W error
            raise InvalidCropError(f"{path}: refused as a decompression bomb ({exc})") from exc
        except Image.UnidentifiedImageError as exc:
            raise InvalidCropError(
                f"{path}: not a recognised image file; accepted formats: {', '.join(ACCEPTED_FORMATS)}"
            ) from exc
        except _DECODE_ERRORS as exc:
            raise InvalidCropError(f"{path}: corrupt image header ({type(exc).__name__}: {exc})") from exc
        with image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidCropError(
                    f"{path}: {width}x{height} = {width * height} pixels is over the limit of "
                    f"{MAX_PIXELS} pixels"
                )
            try:
                image.load()  # decode everything here, so a truncated file fails now, not half-way later
                if image.format == "JPEG":
                    ImageOps.exif_transpose(image, in_place=True)
                pixels = _to_array(image)
            except Image.DecompressionBombError as exc:
                raise InvalidCropError(f"{path}: refused as a decompression bomb ({exc})") from exc
            except _DECODE_ERRORS as exc:
                raise InvalidCropError(
                    f"{path}: truncated or corrupt image data ({type(exc).__name__}: {exc})"
                ) from exc
    if pixels.ndim not in (2, 3) or min(pixels.shape[:2]) == 0:
        raise InvalidCropError(f"{path}: decoded to an unusable array of shape {pixels.shape}")
    return np.ascontiguousarray(pixels)
