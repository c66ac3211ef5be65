"""read_image: every mode comes back as uint8 grey or RGB, every broken file as a named error."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import synthetic_eye

from eyesdk import imagefile
from eyesdk.errors import BackendUnavailableError, InvalidCropError
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
    assert imagefile.MAX_PIXELS == 50_000_000


def test_missing_pillow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(BackendUnavailableError, match=r'pip install "eyesdk\[cli\]"'):
        read_image(tmp_path / "a.png")
