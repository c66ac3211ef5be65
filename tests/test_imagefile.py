"""read_image: every mode comes back as uint8 grey or RGB, every broken file as a named error."""

from __future__ import annotations

import io
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import synthetic_eye

from eyesdk import imagefile
from eyesdk.errors import BackendUnavailableError, InvalidCropError, MissingDependencyError
from eyesdk.imagefile import read_image


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG claiming width x height pixels but holding almost no data, like a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def eye() -> np.ndarray:
    return synthetic_eye(True, (20, 28), np.random.default_rng(1))


def test_grey_png_round_trips_exactly(tmp_path: Path, eye: np.ndarray) -> None:
    Image.fromarray(eye).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 28)
    np.testing.assert_array_equal(out, eye)


def test_rgb_comes_back_in_rgb_order(tmp_path: Path) -> None:
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200  # red
    Image.fromarray(rgb).save(tmp_path / "red.png")
    Image.fromarray(rgb).save(tmp_path / "red.bmp")
    for name in ("red.png", "red.bmp"):
        out = read_image(tmp_path / name)
        assert out.shape == (10, 12, 3)
        assert (out[..., 0] == 200).all() and (out[..., 1:] == 0).all()


def test_jpeg_decodes(tmp_path: Path, eye: np.ndarray) -> None:
    Image.fromarray(eye).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == eye.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - eye).mean() < 8


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "1", "CMYK"])
def test_other_modes_become_grey_or_rgb(tmp_path: Path, eye: np.ndarray, mode: str) -> None:
    image = Image.fromarray(eye).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    image.save(tmp_path / f"a{suffix}")
    out = read_image(tmp_path / f"a{suffix}")
    assert out.dtype == np.uint8 and out.shape[:2] == eye.shape
    assert out.ndim == 2 or out.shape[2] == 3


def test_palette_with_transparency(tmp_path: Path, eye: np.ndarray) -> None:
    image = Image.fromarray(eye).convert("P")
    image.info["transparency"] = 0
    image.save(tmp_path / "t.png", transparency=0)
    assert read_image(tmp_path / "t.png").shape == (*eye.shape, 3)


def test_16_bit_is_scaled_not_truncated(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535]] * 8, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    out = read_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], [0, 1, 128, 255])


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nope.png")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InvalidCropError, match=r"empty\.png.*empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello, not pixels")
    with pytest.raises(InvalidCropError, match=r"notes\.png: not a recognised image file.*PNG, JPEG, BMP"):
        read_image(tmp_path / "notes.png")


def test_other_formats_are_refused(tmp_path: Path, eye: np.ndarray) -> None:
    Image.fromarray(eye).save(tmp_path / "a.gif")
    with pytest.raises(InvalidCropError, match="accepted formats"):
        read_image(tmp_path / "a.gif")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_is_refused_not_half_decoded(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 255, (64, 64), dtype=np.uint8)  # incompressible: half the file, half the pixels
    Image.fromarray(noisy).save(tmp_path / f"full{suffix}")
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidCropError, match=r"cut\.(png|jpg): truncated or corrupt"):
        read_image(tmp_path / f"cut{suffix}")


def test_corrupt_header(tmp_path: Path, eye: np.ndarray) -> None:
    Image.fromarray(eye).save(tmp_path / "a.png")
    data = bytearray((tmp_path / "a.png").read_bytes())
    data[16:24] = b"\xff" * 8  # IHDR width/height garbage, CRC no longer matches
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(InvalidCropError, match=r"bad\.png"):
        read_image(tmp_path / "bad.png")


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(InvalidCropError, match=r"bomb\.png: refused as a decompression bomb"):
        read_image(bomb)


def test_pixel_limit_below_pillows_own(tmp_path: Path) -> None:
    big = _png_header_only(tmp_path / "big.png", 8000, 8000)  # 64 M pixels: Pillow accepts, we do not
    with pytest.raises(InvalidCropError, match=r"big\.png: 8000x8000 = 64000000 pixels is over the limit"):
        read_image(big)
    assert imagefile.MAX_PIXELS == 2048 * 2048


def test_missing_pillow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow is not a backend: its absence is a MissingDependencyError (an ImportError) naming the extras."""
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingDependencyError, match=r"needs Pillow.*pip install 'eyesdk\[runtime\]'") as info:
        read_image(tmp_path / "a.png")
    assert isinstance(info.value, ImportError) and not isinstance(info.value, BackendUnavailableError)


# -- regressions of the adversarial pass (issue 14) ---------------------------------------------------------------


def _jpeg(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


@pytest.mark.parametrize("keep", [0.0, 1 / 3, 0.9])
def test_truncated_jpeg_that_ends_in_eoi_is_refused(tmp_path: Path, keep: float) -> None:
    """#7: a JPEG cut short and closed with an EOI marker decoded padded with grey and was classified."""
    data = _jpeg(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8), quality=90)
    start = _scan_start(data)
    cut = start + int((len(data) - 2 - start) * keep)
    (tmp_path / "cut.jpg").write_bytes(data[:cut] + b"\xff\xd9")
    with pytest.raises(InvalidCropError, match=r"cut\.jpg: truncated or corrupt image data"):
        read_image(tmp_path / "cut.jpg")


def test_progressive_jpeg_missing_its_later_scans_is_refused(tmp_path: Path) -> None:
    """#7: the same for a progressive JPEG cut at a scan boundary: the image is all there, at a fraction of its
    detail, so a prediction would be made on a blurred eye."""
    rgb = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    data = _jpeg(rgb, quality=90, progressive=True)
    scans = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    assert len(scans) > 3
    (tmp_path / "cut.jpg").write_bytes(data[: scans[2]] + b"\xff\xd9")
    with pytest.raises(InvalidCropError, match=r"cut\.jpg: truncated or corrupt image data.*scan"):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize(
    "options", [{}, {"progressive": True}, {"subsampling": 0}, {"restart_marker_blocks": 1}],
    ids=["baseline", "progressive", "444", "restarts"],
)
def test_whole_jpegs_still_decode(tmp_path: Path, options: dict) -> None:
    rgb = np.random.default_rng(2).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    data = _jpeg(rgb, quality=85, **options)
    (tmp_path / "a.jpg").write_bytes(data)
    (tmp_path / "tail.jpg").write_bytes(data + b"camera trailer after the EOI")
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "a.jpg"), expected)
    np.testing.assert_array_equal(read_image(tmp_path / "tail.jpg"), expected)


def _tiff_exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A big-endian TIFF header + IFD0 with (tag, type, count, 4-byte value) entries, as EXIF carries it."""
    body = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\0")
    return body + struct.pack(">I", 0)


ORIENTATION_6 = (0x0112, 3, 1, struct.pack(">H", 6))


def test_malformed_exif_neither_raises_nor_warns(tmp_path: Path) -> None:
    """#8: an EXIF block whose 'Artist' tag has a RATIONAL type made exif_transpose raise AttributeError (and
    other mutations raised UserWarning, an exception under -W error). The pixels are intact: the image decodes,
    oriented by the one tag eyesdk reads."""
    eye = np.zeros((20, 28), np.uint8)
    eye[:, :5] = 255
    exif = _tiff_exif([ORIENTATION_6, (0x013B, 5, 1, struct.pack(">I", 0x40))])
    (tmp_path / "bad.jpg").write_bytes(_jpeg(eye, exif=b"Exif\0\0" + exif, quality=95))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_image(tmp_path / "bad.jpg")
    assert out.shape == (28, 20)  # rotated by orientation 6, as OpenCV's imread does


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\0\0MM\x00\x2a\xff\xff\xff\xff",  # IFD offset beyond the block
        b"Exif\0\0II\x2a\x00\x08\x00\x00\x00\xff\xff",  # 65535 entries declared, none there
        b"Exif\0\0XX\x00\x2a\x00\x00\x00\x08",  # no byte order
        b"Exif\0\0" + _tiff_exif([(0x0112, 3, 1, struct.pack(">H", 77))]),  # orientation out of range
        b"Exif\0\0" + _tiff_exif([(0x0112, 2, 4, b"six\0")]),  # orientation as a string
    ],
    ids=["offset", "count", "order", "range", "type"],
)
def test_unreadable_orientation_means_none(tmp_path: Path, exif: bytes) -> None:
    eye = synthetic_eye(True, (20, 28), np.random.default_rng(3))
    (tmp_path / "plain.jpg").write_bytes(_jpeg(eye, quality=95))
    (tmp_path / "odd.jpg").write_bytes(_jpeg(eye, quality=95, exif=exif))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(tmp_path / "odd.jpg"), read_image(tmp_path / "plain.jpg"))


def test_mpo_files_are_rotated_like_jpegs(tmp_path: Path) -> None:
    """#8: a phone's multi-picture JPEG (MPO) skipped the EXIF rotation the same image as a plain JPEG got."""
    eye = np.zeros((20, 28), np.uint8)
    eye[:, :5] = 255
    exif = b"Exif\0\0" + _tiff_exif([ORIENTATION_6])
    Image.fromarray(eye).save(tmp_path / "a.jpg", "JPEG", exif=exif, quality=95)
    Image.fromarray(eye).save(tmp_path / "a.mpo", "MPO", save_all=True, append_images=[Image.fromarray(eye)],
                              exif=exif, quality=95)
    assert Image.open(tmp_path / "a.mpo").format == "MPO"
    np.testing.assert_array_equal(read_image(tmp_path / "a.mpo"), read_image(tmp_path / "a.jpg"))
    assert read_image(tmp_path / "a.mpo").shape == (28, 20)


def test_files_larger_than_a_crop_are_refused_before_decoding(tmp_path: Path) -> None:
    """#2: a small file declaring 7000 x 7000 (or a JPEG whose frame header was patched to 3000 x 3000) was decoded
    in full (~1 GB) and classified. A crop is never that large: refused from the header, before decoding."""
    big = _png_header_only(tmp_path / "big.png", 7000, 7000)
    with pytest.raises(InvalidCropError, match=r"big\.png: 7000x7000 = 49000000 pixels is over the limit of 4194304"):
        read_image(big)
    data = bytearray(_jpeg(np.zeros((8, 8), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 3000, 3000)
    (tmp_path / "patched.jpg").write_bytes(bytes(data))
    with pytest.raises(InvalidCropError, match=r"patched\.jpg: 3000x3000 = 9000000 pixels is over the limit"):
        read_image(tmp_path / "patched.jpg")
    assert imagefile.MAX_PIXELS == 2048 * 2048


@pytest.mark.parametrize("kind", ["rgb", "grey16", "rgba"])
def test_the_largest_accepted_file_stays_within_its_memory_bound(tmp_path: Path, kind: str) -> None:
    """#2: memory while reading and preprocessing a file stays within 16 MiB + 24 x (4 x file size + 1 MiB),
    whatever its mode: a 16-bit PNG went through float64 (1.2 GiB for a 95 KB file) and RGB crops through a
    float32 copy of every channel."""
    import tracemalloc

    from eyesdk.preprocess import preprocess_grey, to_grey

    side = 2048
    if kind == "grey16":
        pixels = np.tile(np.arange(side, dtype=np.uint16) * 31, (side, 1))
    else:
        pixels = np.zeros((side, side, 3 if kind == "rgb" else 4), np.uint8)
        pixels[::7, :, 0] = 255
    path = tmp_path / "large.png"
    Image.fromarray(pixels).save(path, compress_level=1)
    del pixels
    size = path.stat().st_size
    tracemalloc.start()
    try:
        x = preprocess_grey(to_grey(read_image(path), "rgb"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (32, 32)
    bound = (16 << 20) + 24 * (4 * size + (1 << 20))
    assert peak <= bound, f"{peak / 2**20:.1f} MiB for a {size}-byte file (bound {bound / 2**20:.1f} MiB)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG", "no SOI marker"),
        (b"\xff\xd8\x00\x00", "expected a marker at byte 2"),
        (b"\xff\xd8\xff\xe0\x00", "segment length runs past the end"),
        (b"\xff\xd8\xff\xe0\x00\x10abc", "segment 0xE0 runs past the end"),
        (b"\xff\xd8\xff\xc0\x00\x05abc", "short frame header"),
        (b"\xff\xd8\xff\xda\x00\x05\x02ab", "malformed scan header"),
    ],
)
def test_jpeg_layout_says_where_it_loses_the_structure(data: bytes, message: str) -> None:
    """A structure this reader cannot follow is left to the decoder (read_image does not refuse on it)."""
    with pytest.raises(ValueError, match=message):
        imagefile.jpeg_layout(data)


def test_jpeg_layout_finds_frame_scans_and_exif() -> None:
    rgb = np.random.default_rng(4).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    data = _jpeg(rgb, progressive=True, exif=b"Exif\0\0" + _tiff_exif([ORIENTATION_6]))
    layout = imagefile.jpeg_layout(data)
    assert layout.sof == 0xC2 and len(layout.components) == 3 and len(layout.scans) > 3
    assert all(data[s.end : s.end + 2] in (b"\xff\xd9", b"\xff\xda", b"\xff\xc4") for s in layout.scans)
    ((start, body, end),) = layout.exif
    assert data[start : start + 2] == b"\xff\xe1" and data[body : body + 6] == b"Exif\0\0"
    assert imagefile.exif_orientation(data[body:end]) == 6
