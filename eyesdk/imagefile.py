"""Decode one image file (or a PIL image) into a uint8 array, refusing anything that is not cleanly a whole crop.

Pillow comes with every backend extra and is imported only when a file or PIL image is decoded, so ``import eyesdk``
stays light. The result is grey (H, W) or RGB (H, W, 3) -- RGB, not OpenCV's BGR -- and is only ever handed on to
``eyesdk.preprocess.to_grey``, the one place every crop form ends up. Every decoding problem (empty, truncated,
corrupt, not an image, larger than a crop can be) becomes an ``InvalidCropError`` naming the file, so a data loader
can count bad files instead of crashing or training on half an image.

Memory: a crop is never a 49 Mpx photo, so what a file may decode to is bounded (``MAX_PIXELS``) and checked on
the header, before a single pixel is decoded; 16-bit samples are reduced to 8 bits a band of rows at a time.

Completeness: PNG and BMP decoders refuse missing data themselves. libjpeg does not when a cut-short file ends in an
EOI marker: it pads the missing part with grey and only warns (a truncated open eye was classified "closed"), and
Pillow does not pass the warning on. So a JPEG is checked by a second decode (see ``_check_jpeg_complete``).
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .errors import InvalidCropError, MissingDependencyError
from .preprocess import MAX_SIDE, check_sides
from .safeio import RefusedFileError, read_regular

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP")  # MPO (a camera's multi-picture JPEG) opens through the JPEG plugin
# What a crop can be: 2048 x 2048 is a whole 4 Mpx photo, far beyond any eye crop, and decodes to at most 12 MiB.
MAX_PIXELS = 2048 * 2048
MAX_FILE_BYTES = 64 << 20  # an uncompressed 2048 x 2048 RGBA 16-bit PNG is 32 MiB

# What Pillow's decoders raise on broken input (a Warning too: under -W error it arrives as an exception);
# anything else (MemoryError, KeyboardInterrupt) propagates.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
                  AttributeError, AssertionError, Warning)
_ORIENTATION_TAG = 0x0112
_SIXTEEN_BIT_ROWS = 256


def _pillow() -> tuple[Any, Any]:
    try:
        from PIL import Image, ImageFile
    except ImportError as exc:
        raise MissingDependencyError(
            f"reading image files and PIL images needs Pillow, which is not importable here ({exc}); it comes with "
            "every backend extra: pip install 'eyesdk[runtime]' (or eyesdk[onnx], eyesdk[openvino], eyesdk[tflite])"
        ) from exc
    return Image, ImageFile


def check_decoded_size(width: int, height: int, prefix: str = "") -> None:
    """At most MAX_PIXELS pixels, no side over 8192, from a header: before anything is decoded. (Too small a side
    costs nothing to decode; ``to_grey`` refuses it, as for every crop form.)"""
    if width * height > MAX_PIXELS:
        raise InvalidCropError(
            f"{prefix}{width}x{height} = {width * height} pixels is over the limit of {MAX_PIXELS} pixels "
            f"({int(MAX_PIXELS ** 0.5)} x {int(MAX_PIXELS ** 0.5)}); an eye crop is never this large: crop it first"
        )
    if max(width, height) > MAX_SIDE:
        check_sides(height, width, f"{prefix}crop is")


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) to 0..255 rounded, full scale to full scale: round(v / 257) = (v + 128) // 257,
    in integers, a band of rows at a time (a float64 copy of a 4 Mpx image alone would be 32 MiB)."""
    out = np.empty(values.shape, dtype=np.uint8)
    for i in range(0, values.shape[0], _SIXTEEN_BIT_ROWS):
        band = np.clip(values[i : i + _SIXTEEN_BIT_ROWS], 0, 65535).astype(np.uint32)
        band += 128
        band //= 257
        out[i : i + _SIXTEEN_BIT_ROWS] = band
    return out


def _to_array(image: Any) -> np.ndarray:
    """A PIL image in any mode -> uint8 grey (H, W) or RGB (H, W, 3), alpha dropped; mode F -> float32 as it is
    (a float crop, so in [0, 1] like float arrays: converting it to RGB truncated every value to 0 or 1)."""
    mode = image.mode
    if mode == "L":
        return np.array(image, dtype=np.uint8)
    if mode == "F":
        return np.array(image, dtype=np.float32)
    if mode == "I" or mode.startswith("I;16"):
        # 16-bit PNGs open as I;16 (or I in older Pillow): scale, do not truncate.
        return _sixteen_to_eight(np.asarray(image))
    if mode in ("1", "LA", "La"):
        return np.array(image.convert("L"), dtype=np.uint8)
    if mode == "PA" or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")  # Pillow's advice for palettes with transparency; alpha dropped below
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)


def pil_pixels(image: Any) -> np.ndarray:
    """A PIL image -> uint8 grey or RGB (float32 for mode F) with the same mode handling as files.

    A PIL image decodes lazily, so a truncated file behind it, a closed image or a mode Pillow cannot convert fails
    only here: that is the caller's bad crop (InvalidCropError), as the same file passed by path would be. The size
    is checked before decoding, so an oversized image is refused without being decoded.
    """
    width, height = image.size
    check_decoded_size(width, height)
    try:
        return _to_array(image)
    except _DECODE_ERRORS as exc:
        raise InvalidCropError(f"cannot read the PIL image ({type(exc).__name__}: {exc})") from exc


# -- JPEG structure: where its scans are, so a cut-short file cannot pass as a whole one ---------------------------

_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM, RST0-7: markers without a length
_PROGRESSIVE_SOF = frozenset([0xC2])


def _entropy_end(data: bytes, pos: int) -> int:
    """Position of the marker that ends the entropy-coded data starting at pos (len(data) if none)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:  # stuffed byte, restart, fill
            pos += 1 if following == 0xFF else 2
            continue
        return pos


class Scan(NamedTuple):
    components: tuple[int, ...]
    ss: int  # spectral selection start..end (progressive: which coefficients this scan carries)
    se: int
    al: int  # successive approximation: the bit position this scan brings the coefficients down to
    end: int  # where its entropy-coded data ends (the position of the marker after it)


class JpegLayout(NamedTuple):
    sof: int | None  # the frame's SOF marker (0xC0 baseline, 0xC2 progressive, ...)
    components: list[int]
    scans: list[Scan]
    exif: list[tuple[int, int, int]]  # (segment start, body start, end) of each APP1 "Exif" segment


def jpeg_layout(data: bytes) -> JpegLayout:
    """Where a JPEG's frame, scans and EXIF segments are, for its first image (up to its EOI).

    Raises ValueError when the marker structure cannot be followed; callers then leave the file to the decoder.
    """
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("no SOI marker")
    layout = JpegLayout(None, [], [], [])
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        start = pos
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            break
        if marker in _STANDALONE:
            continue
        if pos + 2 > len(data):
            raise ValueError("segment length runs past the end")
        length = int.from_bytes(data[pos : pos + 2], "big")
        body = data[pos + 2 : pos + length]
        if length < 2 or len(body) != length - 2:
            raise ValueError(f"segment 0x{marker:02X} runs past the end")
        pos += length
        if marker == 0xE1 and body.startswith(b"Exif\0\0"):
            layout.exif.append((start, pos - length + 2, pos))
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            if len(body) < 6 or len(body) < 6 + 3 * body[5]:
                raise ValueError("short frame header")
            layout = layout._replace(sof=marker, components=[body[6 + 3 * i] for i in range(body[5])])
        elif marker == 0xDA:  # SOS: header, then entropy-coded data up to the next marker
            count = body[0] if body else 0
            if len(body) != 4 + 2 * count:
                raise ValueError("malformed scan header")
            pos = _entropy_end(data, pos)
            layout.scans.append(Scan(tuple(body[1 + 2 * i] for i in range(count)), body[1 + 2 * count],
                                     body[2 + 2 * count], body[3 + 2 * count] & 0x0F, pos))
    return layout


def _without_exif(data: bytes) -> tuple[bytes, int]:
    """A JPEG's bytes without its EXIF segments, and the orientation the first of them gave (1 if none).

    Pillow parses EXIF while opening a JPEG (for its DPI), and on a malformed block it raised AttributeError or
    TypeError, or warned - an exception under -W error - for metadata nothing here needs. The one tag eyesdk
    needs is read by ``exif_orientation``; the decoder gets the image without the rest.
    """
    try:
        segments = jpeg_layout(data).exif
    except ValueError:
        return data, 1  # not a structure this reader follows: the decoder gets the file as it is
    if not segments:
        return data, 1
    _, body, end = segments[0]
    orientation = exif_orientation(data[body:end])
    kept, at = bytearray(), 0
    for start, _, end in segments:
        kept += data[at:start]
        at = end
    kept += data[at:]
    return bytes(kept), orientation


def _missing_coefficients(components: list[int], scans: list[Scan]) -> str | None:
    """For a progressive JPEG: which component's coefficients never reach full precision (a scan is missing)."""
    for component in components:
        finest: list[int | None] = [None] * 64
        for scan in scans:
            if component in scan.components:
                for k in range(scan.ss, min(scan.se, 63) + 1):
                    finest[k] = scan.al if finest[k] is None else min(finest[k], scan.al)
        missing = [k for k, al in enumerate(finest) if al != 0]
        if missing:
            return f"component {component}: coefficients {missing[0]}..{missing[-1]} lack their scans"
    return None


# Bits that decode to something other than the zeros libjpeg substitutes for missing data (no 0xFF: no marker).
_PROBE_FILL = bytes.fromhex("5a3c96e1b4782d0f69c3a51e874bd2f01b6e93c47a2f85d0e36c19b45f8a27d4")


def _check_jpeg_complete(image: Any, data: bytes) -> None:
    """Refuse a JPEG whose scans end before their data does (then libjpeg fills the rest with grey and only warns).

    A whole scan never needs a bit past its own data, so decoding the file again with a few bytes of other bits
    slipped in before the marker that ends each scan gives the very same pixels; a cut-short scan reads them
    instead of the zeros, and the pixels differ. A progressive JPEG must also carry every scan its coefficients
    need (a file cut at a scan boundary has whole scans, just not all of them).
    """
    try:
        layout = jpeg_layout(data)
    except ValueError:
        return  # not a structure this check follows: the decoder's own checks apply
    scans = layout.scans
    if not scans:
        return
    if layout.sof in _PROGRESSIVE_SOF:
        problem = _missing_coefficients(layout.components, scans)
        if problem:
            raise OSError(f"a progressive JPEG missing scans: {problem}")
    twin, at = bytearray(), 0
    for scan in scans:
        twin += data[at : scan.end] + _PROBE_FILL
        at = scan.end
    twin += data[at:]
    Image, _ = _pillow()
    with Image.open(io.BytesIO(bytes(twin)), formats=("JPEG",)) as other:
        other.load()
        same = other.size == image.size and other.tobytes() == image.tobytes()
    if not same:
        raise OSError("a scan ends before its data does (the file was cut short: libjpeg filled in grey)")


# -- EXIF orientation: the one tag read, by a parser that cannot fail --------------------------------------------

_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def exif_orientation(exif: bytes) -> int:
    """The EXIF orientation (1..8) from a raw EXIF block, 1 when absent or unreadable.

    Read by hand from IFD0, with every offset bounds-checked: Pillow's full EXIF parser raised AttributeError,
    TypeError or struct.error on malformed blocks and warned (an exception under -W error) on most others, for
    metadata nothing here needs. An orientation that cannot be read is no orientation, as OpenCV's imread treats it.
    """
    tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return 1
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return 1
    for i in range(struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]):
        at = ifd + 2 + 12 * i
        if at + 12 > len(tiff):
            return 1
        tag, kind, count = struct.unpack(order + "HHI", tiff[at : at + 8])
        if tag == _ORIENTATION_TAG:
            value = struct.unpack(order + "H", tiff[at + 8 : at + 10])[0]
            return value if kind == 3 and count == 1 and 1 <= value <= 8 else 1
    return 1


def _read_file(path: Path) -> bytes:
    try:
        data = read_regular(path, MAX_FILE_BYTES)  # OSErrors of opening the path propagate unchanged
    except RefusedFileError as exc:
        raise InvalidCropError(f"{path}: {str(exc).removeprefix('is ')}, not an image") from None
    if not data:
        raise InvalidCropError(f"{path}: the file is empty (0 bytes), not an image")
    return data


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a PNG, JPEG (or MPO) or BMP file to uint8 grey (H, W) or RGB (H, W, 3), fully or not at all.

    JPEG EXIF orientation is applied (as OpenCV's imread does), 16-bit images are scaled to 8 bits, palettes are
    expanded. Opening the path raises what ``open()`` raises (FileNotFoundError, IsADirectoryError,
    PermissionError, ...); anything else -- an empty path, a FIFO or device, content that is not cleanly a whole
    image, more than MAX_PIXELS pixels -- raises InvalidCropError naming the file.
    """
    raw = os.fsdecode(os.fspath(path))
    if not raw or "\0" in raw:  # Path("") would mean ".", and open() raises a bare ValueError on NUL
        reason = "an empty path" if not raw else "a NUL character in the path"
        raise InvalidCropError(f"{raw!r}: not an image file path ({reason})")
    path = Path(raw)
    Image, _ = _pillow()
    data, orientation = _without_exif(_read_file(path))
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
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
        check_decoded_size(width, height, f"{path}: ")
        try:
            image.load()  # decode everything here, so a truncated file fails now, not half-way later
            if image.format in ("JPEG", "MPO"):
                _check_jpeg_complete(image, data)
            pixels = _to_array(image)
        except _DECODE_ERRORS as exc:
            raise InvalidCropError(f"{path}: truncated or corrupt image data ({type(exc).__name__}: {exc})") from exc
    if pixels.ndim not in (2, 3) or min(pixels.shape[:2]) == 0:
        raise InvalidCropError(f"{path}: decoded to an unusable array of shape {pixels.shape}")
    if orientation != 1:
        pixels = _ORIENT[orientation](pixels)
    return np.ascontiguousarray(pixels)
