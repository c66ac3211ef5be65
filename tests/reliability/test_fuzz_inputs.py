"""Fuzzing the input surface: whatever a caller hands ``EyeState``, it gets a prediction or a documented error.

The promise (docs/reliability.md): ``predict`` / ``predict_batch`` return well-formed predictions or raise
``InvalidCropError`` (a ValueError). A *path* may also raise the OSError that opening it raises (FileNotFoundError,
IsADirectoryError, ...), as ``open()`` would; what the file *contains* is always an InvalidCropError. Never another
exception, never a warning (every example runs with warnings as errors, so a user running ``-W error`` sees the same
thing), never a hang (a SIGALRM watchdog per example, besides Hypothesis' own deadline), never memory far beyond the
input's own size (tracemalloc peak per example).

Examples per property: ``EYESDK_FUZZ_EXAMPLES`` (default small, for CI; the last big run is in docs/reliability.md).
One backend is enough here: the input surface ends at the preprocessed float32 batch, which every backend receives
alike; ``test_odd_inputs_on_every_backend`` is the small smoke over the others.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import struct
import tracemalloc
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_helpers import tiny_bundle_path
from synthetic import synthetic_eye

import eyesdk
from eyesdk import imagefile, preprocess
from eyesdk.errors import InvalidCropError

EXAMPLES = int(os.environ.get("EYESDK_FUZZ_EXAMPLES", "0"))
WATCHDOG_S = 30.0  # a hard stop per example; Hypothesis' deadline below only reports slowness after the fact
SLACK_BYTES = 16 << 20  # fixed allowance per call (weight matrices, backend buffers, Python objects)
BYTES_PER_INPUT_BYTE = 24  # float32 copies of every channel, grey, stacked crops: a few times the input at most
TRIED: Counter[str] = Counter()  # "property outcome" -> examples; printed at the end of the module (-s shows it)


def fuzz_settings(default: int) -> settings:
    """``default`` examples in CI, EYESDK_FUZZ_EXAMPLES for a long run; no example database written to the repo."""
    return settings(
        max_examples=EXAMPLES or default,
        deadline=5000,  # ms per example; generous: this machine is shared with a training job
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                               HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Iterator[eyesdk.EyeState]:
    if "onnxruntime" not in eyesdk.available_backends():
        pytest.skip("the fuzz runs on onnxruntime, which is not installed here")
    yield eyesdk.EyeState(model=tiny_bundle_path(tmp_path_factory), backend="onnxruntime", precision="fp32")
    if TRIED:
        total = sum(TRIED.values())
        print(f"\nfuzz: {total} inputs tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the whole module: Hypothesis reruns a test body many times per function-scoped fixture."""
    return tmp_path_factory.mktemp("fuzz")


# -- the guard every example runs under ----------------------------------------------------------------------------


def _on_alarm(signum: int, frame: Any) -> None:
    raise TimeoutError(f"one example ran longer than {WATCHDOG_S} s: treated as a hang")


@contextlib.contextmanager
def guarded(input_bytes: int) -> Iterator[None]:
    """Warnings as errors, a watchdog against hangs and a bound on the memory allocated while the body runs."""
    can_alarm = hasattr(signal, "setitimer") and threading_is_main()
    if can_alarm:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, WATCHDOG_S)
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            yield
        peak = tracemalloc.get_traced_memory()[1] - base
        bound = SLACK_BYTES + BYTES_PER_INPUT_BYTE * input_bytes
        assert peak <= bound, f"allocated {peak / 2**20:.1f} MiB for a {input_bytes}-byte input (bound {bound})"
    finally:
        if not started:
            tracemalloc.stop()
        if can_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def check_prediction(es: eyesdk.EyeState, r: Any) -> None:
    assert isinstance(r, eyesdk.EyePrediction)
    assert math.isfinite(r.logit) and 0.0 <= r.prob_open <= 1.0
    assert r.is_open == (r.prob_open >= es.threshold) and r.label == ("open" if r.is_open else "closed")


def outcome(name: str, call: Callable[[], Any], input_bytes: int) -> Any:
    """Run call under the guard; an InvalidCropError is a valid outcome (returns None), anything else escapes."""
    with guarded(input_bytes):
        try:
            result = call()
        except InvalidCropError as exc:
            assert str(exc), "an InvalidCropError must say what was wrong"
            TRIED[f"{name} refused"] += 1
            return None
    TRIED[f"{name} ok"] += 1
    return result


# -- arrays -------------------------------------------------------------------------------------------------------

DTYPES = [
    np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.int32, np.int64, np.uint64,
    np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128,
    np.dtype(">f4"), np.dtype(">f8"), np.dtype(">u2"), np.dtype("M8[s]"), np.dtype("m8[ms]"),
    np.dtype("U3"), np.dtype("S2"), np.dtype([("a", "u1"), ("b", "f4")]), np.dtype(object),
]
SPECIALS = [0.0, -0.0, 1.0, 0.5, -1.0, 1e-45, 1.0000001, 255.0, 65504.0, 1e30, -1e30, 1e300, -1e300,
            np.nan, np.inf, -np.inf]
SIDES = st.one_of(st.sampled_from([0, 1, 2, 7, 8, 9, 31, 32, 33]), st.integers(0, 120))
SMALL_SIDES = st.integers(0, 12)  # ndim 4 and 5: keeps the element count bounded


@st.composite
def shapes(draw: st.DrawFn) -> tuple[int, ...]:
    ndim = draw(st.integers(0, 5))
    if ndim == 3 and draw(st.booleans()):  # a colour crop: the channel axis is where the interesting cases are
        return draw(SIDES), draw(SIDES), draw(st.integers(0, 5))
    return tuple(draw(SIDES if ndim <= 3 else SMALL_SIDES) for _ in range(ndim))


def filled(dtype: np.dtype, shape: tuple[int, ...], rng: np.random.Generator, model: str) -> np.ndarray:
    """Values of one of a few models: valid pixels, a wide spread, or every bit pattern of the dtype."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    kind = dtype.kind
    if kind == "f" or kind == "c":
        values = {"valid": rng.random(n), "wide": rng.normal(0.0, 1e3, n), "bits": rng.normal(0.0, 1e30, n)}[model]
        if kind == "c":
            values = values + 1j * rng.random(n)
        with np.errstate(all="ignore"):
            return values.astype(dtype).reshape(shape)
    if kind in "iu":
        info = np.iinfo(dtype)
        hi = 256 if model == "valid" else int(info.max) + 1
        lo = 0 if model == "valid" else int(info.min)
        return rng.integers(lo, hi, n, dtype=np.int64 if info.max < 2**63 else np.uint64).astype(dtype).reshape(shape)
    if kind == "b":
        return (rng.random(n) < 0.5).reshape(shape)
    if kind == "O":
        pool = np.array([0, 1.5, None, "x", 255, float("nan"), [1, 2], np.zeros(2)], dtype=object)
        return pool[rng.integers(0, len(pool), n)].reshape(shape)
    return np.zeros(shape, dtype=dtype)  # datetimes, strings, records: zeros are enough to hit their dtype check


VIEWS = st.lists(st.sampled_from(["step", "step", "transpose", "fortran", "broadcast", "readonly", "byteswap",
                                  "newaxis", "flip", "squeeze"]), max_size=3)


def as_view(x: np.ndarray, steps: list[str], rng: np.random.Generator) -> np.ndarray:
    """Non-contiguous views of the same data: strided slices, transposes, zero strides, other byte orders."""
    for step in steps:
        if step == "step" and x.ndim:
            axis = int(rng.integers(0, x.ndim))
            index = [slice(None)] * x.ndim
            index[axis] = slice(int(rng.integers(0, 3)), None, int(rng.choice([-3, -2, -1, 2, 3])))
            x = x[tuple(index)]
        elif step == "transpose" and x.ndim >= 2:
            x = x.transpose(rng.permutation(x.ndim))
        elif step == "fortran":
            x = np.asfortranarray(x)
        elif step == "broadcast" and x.ndim and x.shape[-1] >= 1:
            x = np.broadcast_to(x[..., :1], x.shape)  # zero strides, read-only
        elif step == "readonly":
            x = x.view()
            x.flags.writeable = False
        elif step == "byteswap" and x.dtype.kind in "iufc" and x.dtype.itemsize > 1:
            x = x.astype(x.dtype.newbyteorder())
        elif step == "newaxis":
            x = x[None] if rng.random() < 0.5 else x[..., None]
        elif step == "flip" and x.ndim:
            x = np.flip(x, axis=int(rng.integers(0, x.ndim)))
        elif step == "squeeze":
            x = x.squeeze()
    return x


PIXEL_DTYPES = [np.uint8, np.float16, np.float32, np.float64, np.longdouble, np.dtype(">f4"), np.dtype(">f8")]
CROP_SIDES = st.one_of(st.sampled_from([8, 9, 32, 33]), st.integers(8, 160))


@st.composite
def plausible_shapes(draw: st.DrawFn) -> tuple[int, ...]:
    """Shapes predict accepts (grey or 1/3/4 channels, sides >= 8), so the arithmetic gets fuzzed, not only checks."""
    shape = (draw(CROP_SIDES), draw(CROP_SIDES))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    return shape if channels is None else (*shape, channels)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    """Half plausible crops (pixel dtypes, valid shapes and values, odd views), half anything at all."""
    if draw(st.booleans()):
        dtype, shape, model = draw(st.sampled_from(PIXEL_DTYPES)), draw(plausible_shapes()), "valid"
    else:
        dtype, shape = draw(st.sampled_from(DTYPES)), draw(shapes())
        model = draw(st.sampled_from(["valid", "wide", "bits"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = filled(dtype, shape, rng, model)
    if x.dtype.kind in "fc" and x.size and draw(st.integers(0, 3)) == 0:  # NaN, inf, -0.0, huge, just over 1
        flat = x.reshape(-1)
        with np.errstate(all="ignore"):
            for _ in range(draw(st.integers(1, 3))):
                flat[int(rng.integers(0, flat.size))] = draw(st.sampled_from(SPECIALS))
    return as_view(x, draw(VIEWS), rng)


@given(x=arrays())
@fuzz_settings(default=300)
def test_predict_on_any_array(es: eyesdk.EyeState, x: np.ndarray) -> None:
    r = outcome("predict(array)", lambda: es.predict(x), x.nbytes)
    if r is not None:
        check_prediction(es, r)
        # A view and its contiguous copy are the same pixels: the same answer, to the bit.
        assert es.predict(np.array(x, order="C", copy=True)).logit == r.logit


@given(x=arrays(), form=st.sampled_from(["array", "stack", "broadcast", "list", "pair"]), n=st.integers(0, 4))
@fuzz_settings(default=300)
def test_predict_batch_on_any_array(es: eyesdk.EyeState, x: np.ndarray, form: str, n: int) -> None:
    crops: Any = {
        "array": lambda: x,
        "stack": lambda: np.stack([x] * n) if n else np.empty((0, *x.shape), x.dtype),
        "broadcast": lambda: np.broadcast_to(x, (n, *x.shape)),  # n crops sharing one buffer: zero stride on axis 0
        "list": lambda: [x] * n,
        "pair": lambda: [x, np.ascontiguousarray(x)],
    }[form]()
    results = outcome(f"predict_batch({form})", lambda: es.predict_batch(crops), max(1, n) * x.nbytes)
    if results is not None:
        assert isinstance(results, list)
        expected = len(crops) if form != "array" else (len(x) if x.ndim else 0)
        assert len(results) == expected
        for r in results:
            check_prediction(es, r)
        if results and form in ("stack", "broadcast", "list", "pair"):  # one crop repeated: one answer repeated
            single = es.predict(x).logit
            assert all(abs(r.logit - single) <= 1e-4 for r in results)


# -- image files ----------------------------------------------------------------------------------------------------


def _image_bytes(array: np.ndarray, fmt: str, **options: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    """Small valid files of every accepted format and mode, plus a GIF (a refused format), to mutate."""
    pytest.importorskip("PIL")
    from PIL import Image

    eye = synthetic_eye(True, (20, 28), np.random.default_rng(0))
    rgb = np.dstack([eye, eye // 2, 255 - eye])
    palette = io.BytesIO()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(palette, "PNG", transparency=0)
    return {
        "png-L": _image_bytes(eye, "PNG"),
        "png-RGB": _image_bytes(rgb, "PNG"),
        "png-RGBA": _image_bytes(np.dstack([rgb, eye]), "PNG"),
        "png-16": _image_bytes(eye.astype(np.uint16) * 257, "PNG"),
        "png-P": palette.getvalue(),
        "jpeg-L": _image_bytes(eye, "JPEG"),
        "jpeg-RGB": _image_bytes(rgb, "JPEG", quality=90),
        "bmp-RGB": _image_bytes(rgb, "BMP"),
        "gif": _image_bytes(eye, "GIF"),
    }


BIG_INTS = st.sampled_from([0, 1, 8, 255, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """One to three of: truncate, flip bytes, overwrite 4 bytes with a large integer (header sizes), insert junk."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "int", "insert", "junk"]))
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        if kind == "truncate":
            del out[at:]
        elif kind == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "int":
            out[at : at + 4] = struct.pack(draw(st.sampled_from([">I", "<I"])), draw(BIG_INTS))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            out = bytearray(draw(st.binary(max_size=256)))
    return bytes(out)


@given(data=st.data())
@fuzz_settings(default=250)
def test_predict_on_corrupt_files(es: eyesdk.EyeState, seeds: dict[str, bytes], scratch: Path, data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(seeds)))
    content = data.draw(mutations(seeds[name]))
    path = scratch / f"fuzz.{name.split('-')[0]}"
    path.write_bytes(content)
    r = outcome("predict(file)", lambda: es.predict(path), 4 * len(content) + (1 << 20))
    if r is not None:
        check_prediction(es, r)


# -- image headers and EXIF: structured mutations that keep checksums and lengths valid ------------------------------
# Random bytes rarely get past a PNG's CRCs or a JPEG's segment lengths; these properties rewrite the fields a decoder
# trusts (sizes, depths, colour types, sampling factors, BMP offsets) with checksums recomputed, and build EXIF blocks
# (random byte order, IFD offsets, tags, types, counts, values; MPO files too) around valid pixels.

HEADER_INTS = st.one_of(st.sampled_from([0, 1, 2, 7, 8, 9, 16, 255, 2048, 2049, 8192, 8193, 65535, 2**31 - 1,
                                         2**32 - 1]), st.integers(0, 2**32 - 1))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@st.composite
def png_headers(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid PNG whose IHDR fields are rewritten (CRC recomputed)."""
    width, height, depth, colour, compression, filt, interlace = struct.unpack(">IIBBBBB", seed[16:29])
    fields = [width, height, depth, colour, compression, filt, interlace]
    for i in draw(st.lists(st.integers(0, 6), min_size=1, max_size=3)):
        fields[i] = draw(HEADER_INTS) if i < 2 else draw(st.sampled_from([0, 1, 2, 3, 4, 6, 8, 16, 255]))
    fields[:2] = [min(f, 2**31 - 1) for f in fields[:2]]  # PNG forbids more; struct needs it to fit
    ihdr = struct.pack(">IIBBBBB", *fields)
    return seed[:8] + _chunk(b"IHDR", ihdr) + seed[33:]


@st.composite
def jpeg_headers(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid JPEG whose frame header (precision, height, width, components, sampling, table ids) is rewritten."""
    data = bytearray(seed)
    sof = data.index(b"\xff\xc0")
    length = int.from_bytes(data[sof + 2 : sof + 4], "big")
    for _ in range(draw(st.integers(1, 4))):
        at = sof + 4 + draw(st.integers(0, length - 3))
        if at in (sof + 5, sof + 7):  # height, width: 16 bits
            data[at : at + 2] = struct.pack(">H", draw(HEADER_INTS) & 0xFFFF)
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def bmp_headers(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid BMP whose header fields (data offset, sizes, planes, bits per pixel, compression) are rewritten."""
    data = bytearray(seed)
    fields = {10: "<I", 18: "<i", 22: "<i", 26: "<H", 28: "<H", 30: "<I", 34: "<I", 46: "<I"}
    for at in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3)):
        fmt = fields[at]
        value = draw(HEADER_INTS)
        if fmt == "<i":
            value = value - 2**32 if value >= 2**31 else value
        data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value & (0xFFFF if fmt == "<H" else 0xFFFFFFFF)
                                                           if fmt != "<i" else value)
    return bytes(data)


@given(data=st.data())
@fuzz_settings(default=200)
def test_predict_on_fuzzed_headers(es: eyesdk.EyeState, seeds: dict[str, bytes], scratch: Path, data: Any) -> None:
    kind = data.draw(st.sampled_from(["png-L", "png-RGB", "png-16", "png-P", "jpeg-L", "jpeg-RGB", "bmp-RGB"]))
    seed = seeds[kind]
    make = {"png": png_headers, "jpeg": jpeg_headers, "bmp": bmp_headers}[kind.split("-")[0]]
    content = data.draw(make(seed))
    path = scratch / f"header.{kind.split('-')[0]}"
    path.write_bytes(content)
    r = outcome("predict(header)", lambda: es.predict(path), 4 * len(content) + (1 << 20))
    if r is not None:
        check_prediction(es, r)


EXIF_TAGS = st.one_of(st.sampled_from([0x0112, 0x010F, 0x0110, 0x011A, 0x0128, 0x0132, 0x013B, 0x8769, 0x8825,
                                       0xA005, 0x927C]), st.integers(0, 0xFFFF))


@st.composite
def exif_blocks(draw: st.DrawFn) -> tuple[bytes, int]:
    """(an EXIF block, the orientation a correct reader finds in it: 1 unless a well-formed tag says otherwise)."""
    order = draw(st.sampled_from(["<", ">"]))
    entries, orientation = [], 1
    for _ in range(draw(st.integers(0, 6))):
        tag, kind = draw(EXIF_TAGS), draw(st.integers(0, 13))
        count = draw(st.sampled_from([0, 1, 2, 4, 1000, 2**32 - 1]))
        value = draw(st.binary(min_size=4, max_size=4))
        if tag == 0x0112 and draw(st.booleans()):  # a well-formed orientation, often
            kind, count = 3, 1
            value = struct.pack(order + "H", draw(st.integers(0, 9))) + b"\0\0"
        entries.append((tag, kind, count, value))
    for tag, kind, count, value in entries:  # the first orientation tag is the one that counts
        if tag == 0x0112:
            number = struct.unpack(order + "H", value[:2])[0]
            orientation = number if kind == 3 and count == 1 and 1 <= number <= 8 else 1
            break
    ifd = 8
    tiff = (b"II" if order == "<" else b"MM") + struct.pack(order + "H", 42) + struct.pack(order + "I", ifd)
    tiff += struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        tiff += struct.pack(order + "HHI", tag, kind, count) + value
    tiff += struct.pack(order + "I", draw(st.sampled_from([0, 8, 26, 2**32 - 1])))
    tiff += draw(st.binary(max_size=32))
    if draw(st.integers(0, 4)) == 0:  # and sometimes a few bytes flipped or the block cut short
        cut = bytearray(tiff)
        for _ in range(draw(st.integers(1, 3))):
            cut[draw(st.integers(0, len(cut) - 1))] ^= draw(st.integers(1, 255))
        tiff = bytes(cut[: draw(st.integers(0, len(cut)))])
        orientation = None  # unknown: only "no exception, no warning" is checked
    return b"Exif\0\0" + tiff, orientation


@given(block=exif_blocks(), container=st.sampled_from(["JPEG", "MPO"]))
@fuzz_settings(default=200)
def test_predict_on_fuzzed_exif(es: eyesdk.EyeState, scratch: Path, block: tuple[bytes, int | None],
                                container: str) -> None:
    from PIL import Image

    exif, orientation = block
    eye = synthetic_eye(True, (20, 28), np.random.default_rng(0))
    buffer = io.BytesIO()
    extra = {"save_all": True, "append_images": [Image.fromarray(eye)]} if container == "MPO" else {}
    Image.fromarray(eye).save(buffer, container, exif=exif, quality=95, **extra)
    path = scratch / f"exif.{container.lower()}"
    path.write_bytes(buffer.getvalue())
    pixels = outcome("read_image(exif)", lambda: imagefile.read_image(path), 4 * len(buffer.getvalue()) + (1 << 20))
    if pixels is not None and orientation is not None:  # the tag's rotation applied, nothing else
        assert pixels.shape == ((28, 20) if orientation >= 5 else (20, 28))
    r = outcome("predict(exif)", lambda: es.predict(path), 4 * len(buffer.getvalue()) + (1 << 20))
    if r is not None:
        check_prediction(es, r)


# -- a fixed corpus: the cases a random search is unlikely to build -----------------------------------------------


def _png(width: int, height: int, extra: bytes = b"") -> bytes:
    """A PNG whose header claims width x height but holds almost no data (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def _png_text_bomb() -> bytes:
    """A valid 8 x 8 PNG carrying a zTXt chunk that inflates to 64 MB (Pillow caps text chunks)."""
    text = zlib.compress(b"\x00" * (64 << 20), 9)
    body = b"Comment\x00\x00" + text
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    png = _image_bytes(np.zeros((8, 8), np.uint8), "PNG")
    return png[:33] + chunk + png[33:]  # right after the 8-byte signature and the 25-byte IHDR chunk


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_image_bytes(np.zeros((8, 8), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")  # baseline SOF0: length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(_image_bytes(np.zeros((8, 8, 3), np.uint8), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.png", lambda: b"", r"empty\.png: the file is empty \(0 bytes\)"),
        ("bomb.jpg", lambda: _jpeg_claiming(65500, 65500), r"bomb\.jpg: refused as a decompression bomb"),
        ("bomb.bmp", lambda: _bmp_claiming(60000, 60000), r"bomb\.bmp: refused as a decompression bomb"),
        # Between Pillow's warning (89 M pixels) and error (179 M) thresholds: its DecompressionBombWarning, an
        # exception under -W error (as here), must become eyesdk's refusal instead of escaping.
        ("warned.png", lambda: _png(10_000, 10_000), r"warned\.png: refused as a decompression bomb"),
        ("over.png", lambda: _png(8192, 6104), r"over\.png: 8192x6104 = 50003968 pixels is over the limit"),
        ("text-bomb.png", _png_text_bomb, r"text-bomb\.png: (corrupt image header|truncated or corrupt)"),
        ("wide.png", lambda: _image_bytes(np.zeros((8, 8193), np.uint8), "PNG"), r"crop is 8x8193 pixels"),
    ],
)
def test_hostile_files_are_refused(
    es: eyesdk.EyeState, scratch: Path, name: str, make: Callable[[], bytes], message: str
) -> None:
    pytest.importorskip("PIL")
    path = scratch / name
    path.write_bytes(make())
    with guarded(1 << 20), pytest.raises(InvalidCropError, match=message):
        es.predict(path)


def test_a_tiny_file_declaring_a_huge_chunk_allocates_nothing_big(es: eyesdk.EyeState, scratch: Path) -> None:
    """Found by the 20k-example run: a 441-byte PNG whose IDAT length field says 50 MB made Pillow skip the chunk
    with one ``read(50 MB)``, which allocates it up front; at 2**31 - 16 that is 2 GiB, a MemoryError on a 32-bit
    board. Whatever the decoder makes of such a file, memory stays within a small bound."""
    pytest.importorskip("PIL")
    data = bytearray(_image_bytes(synthetic_eye(True, (20, 28), np.random.default_rng(0)), "PNG"))
    at = data.index(b"IDAT") - 4
    data[at : at + 4] = struct.pack(">I", 0x7FFFFFF0)
    path = scratch / "huge-chunk.png"
    path.write_bytes(bytes(data))
    r = outcome("predict(file)", lambda: es.predict(path), 1 << 20)  # a prediction or InvalidCropError, no MemoryError
    if r is not None:
        check_prediction(es, r)


def test_largest_accepted_file_decodes_within_its_own_size(es: eyesdk.EyeState, scratch: Path) -> None:
    """8192 x 512 = 4,194,304 pixels, exactly the limit (a crop is never more): decoded and classified within the
    bound a file gets, 16 MiB + 24 x (4 x its size + 1 MiB), although it compresses to a few KB."""
    pytest.importorskip("PIL")
    image = np.zeros((512, 8192, 3), np.uint8)
    image[::5] = 255
    data = _image_bytes(image, "PNG", compress_level=1)
    (scratch / "largest.png").write_bytes(data)
    del image
    assert imagefile.MAX_PIXELS == 8192 * 512
    with guarded(4 * len(data) + (1 << 20)):
        check_prediction(es, es.predict(scratch / "largest.png"))
    (scratch / "over.png").write_bytes(_png(8192, 513))
    with pytest.raises(InvalidCropError, match=r"over\.png: 8192x513 = 4202496 pixels is over the limit of 4194304"):
        es.predict(scratch / "over.png")


@pytest.mark.parametrize(("shape", "ok"), [((8, 8), True), ((7, 8), False), ((8192, 8), True), ((8, 8193), False)])
def test_side_limits_are_exact(es: eyesdk.EyeState, shape: tuple[int, int], ok: bool) -> None:
    crop = np.full(shape, 128, np.uint8)
    if ok:
        check_prediction(es, es.predict(crop))
    else:
        with pytest.raises(InvalidCropError, match=rf"crop is {shape[0]}x{shape[1]} pixels; sides must be 8\.\.8192"):
            es.predict(crop)


def test_empty_stack_with_huge_sides_allocates_nothing(es: eyesdk.EyeState) -> None:
    """Zero crops of 8 x 2**26 pixels: no data, so no resize matrix may be built for them (it would be 8 GiB)."""
    stack = np.empty((0, 8, 1 << 26), np.uint8)
    with guarded(0):
        assert es.predict_batch(stack) == []


def test_float64_beyond_float32_is_refused_by_range_without_a_warning(es: eyesdk.EyeState) -> None:
    crop = np.full((20, 20), 0.5)
    crop[3, 4] = 1e300  # finite in float64, inf once cast: the message must say out of range, not "NaN"
    with guarded(crop.nbytes), pytest.raises(InvalidCropError, match=r"float crop has values in \[0\.5, 1e\+300\]"):
        es.predict(crop)


def _fifo(path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda d: d / "missing.png", FileNotFoundError, "missing.png"),
        (lambda d: d, IsADirectoryError, "Is a directory"),
        (lambda d: d / "not-a-dir.png" / "x.png", NotADirectoryError, "Not a directory"),
        (lambda d: _fifo(d / "pipe.png"), InvalidCropError, r"pipe\.png: not a regular file"),
        (lambda d: Path("/dev/null"), InvalidCropError, r"/dev/null: not a regular file"),
        (lambda d: "", InvalidCropError, "an empty path"),
        (lambda d: str(d / "nul\0.png"), InvalidCropError, "a NUL character"),
        (lambda d: d / ("x" * 300 + ".png"), OSError, "File name too long"),
    ],
    ids=["missing", "directory", "under-a-file", "fifo", "device", "empty", "nul", "too-long"],
)
def test_odd_paths(es: eyesdk.EyeState, tmp_path: Path, make: Callable[[Path], Any], error: type, message: str) -> None:
    """Opening the path raises what ``open()`` would (an OSError); a FIFO or device is refused without a hang."""
    (tmp_path / "not-a-dir.png").write_bytes(b"x")
    path = make(tmp_path)
    if str(path).startswith("/dev/") and not Path(path).exists():
        pytest.skip("no /dev/null here")
    with guarded(0), pytest.raises(error, match=message):
        es.predict(path)


def test_broken_pil_images_are_invalid_crops(es: eyesdk.EyeState, scratch: Path) -> None:
    """A PIL image is decoded lazily: a truncated file behind it, a closed one or an unconvertible mode is the
    caller's bad crop, so it must be an InvalidCropError like the same file passed as a path."""
    Image = pytest.importorskip("PIL.Image")
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    data = _image_bytes(noisy, "PNG")
    (scratch / "cut.png").write_bytes(data[: len(data) // 2])
    closed = Image.open(io.BytesIO(data))
    closed.close()
    cases = [
        (Image.open(scratch / "cut.png"), "truncated"),
        (closed, "closed image"),
        (Image.new("La", (16, 16)), "conversion from La"),
    ]
    for image, message in cases:
        with guarded(1 << 20), pytest.raises(InvalidCropError, match=rf"cannot read the PIL image.*{message}"):
            es.predict(image)
        image.close()
    # Sides are checked on the header, before decoding: an oversized lazy image is refused without its pixels.
    with pytest.raises(InvalidCropError, match=r"crop is 4x4 pixels; sides must be 8\.\.8192"):
        es.predict(Image.new("L", (4, 4)))
    (scratch / "tall.png").write_bytes(_png(8, 9000))
    with Image.open(scratch / "tall.png") as tall, guarded(1 << 20), pytest.raises(InvalidCropError,
                                                                                   match=r"crop is 9000x8 pixels"):
        es.predict(tall)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "tflite"])
def test_odd_inputs_on_every_backend(tmp_path_factory: pytest.TempPathFactory, backend: str) -> None:
    """The same odd-but-valid inputs on every installed backend: views, float16, big-endian, 1-crop batches."""
    if backend not in eyesdk.available_backends():
        pytest.skip(f"{backend} is not installed here")
    state = eyesdk.EyeState(model=tiny_bundle_path(tmp_path_factory), backend=backend, precision="fp32")
    eye = synthetic_eye(True, (40, 60), np.random.default_rng(2))
    base = state.predict(eye).logit
    views = [eye.T.T, eye[::-1, ::-1][::-1, ::-1], np.asfortranarray(eye), np.broadcast_to(eye[..., None], (40, 60, 3))]
    for view in views:
        assert state.predict(view).logit == pytest.approx(base, abs=1e-5)
    for floats in (eye.astype(np.float16) / np.float16(255), (eye / 255.0).astype(">f8")):
        assert state.predict(floats).logit == pytest.approx(base, abs=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert state.predict_batch(np.empty((0, 8, 1 << 20), np.uint8)) == []
        with pytest.raises(InvalidCropError, match="dtype complex128 is not supported"):
            state.predict(eye.astype(complex))
    assert len(state.predict_batch(np.stack([eye, eye])[:, ::2, ::3])) == 2


def test_resize_caches_stay_small_under_ever_different_sizes() -> None:
    """60 crops of 60 different sides up to 8192 keep at most a few of their resize matrices (1 MiB each at 8192):
    before, 256-entry caches per axis could pin ~512 MiB after such a stream."""
    sides = np.linspace(600, 8192, 60).astype(int)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for side in sides:
            preprocess.resize_grey(np.zeros((8, int(side)), np.float32), 32)
            preprocess.resize_grey(np.zeros((int(side), 8), np.float32), 32)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= 12 << 20, f"resize caches hold {held / 2**20:.1f} MiB"
    assert preprocess.RESIZE_CACHE_SIDE >= 512  # every eye crop a detector hands over stays cached
