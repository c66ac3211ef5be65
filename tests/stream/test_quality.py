"""The crop-quality gate: each reason on a crop made to have it, and real crops passing."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_eye

from eyesdk.preprocess import resize_grey
from eyesdk.stream.errors import StreamConfigError
from eyesdk.stream.quality import QualityConfig, crop_stats, detail_of, judge


def verdict(crop: np.ndarray, side_px: float | None = None, inside: float = 1.0,
            config: QualityConfig | None = None) -> str | None:
    grey = crop.astype(np.float32)
    stats = crop_stats(grey, resize_grey(grey, 24))
    return judge(stats, float(min(crop.shape)) if side_px is None else side_px, inside, config or QualityConfig())


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma)))


@pytest.fixture
def eye() -> np.ndarray:
    return synthetic_eye(True, 64, np.random.default_rng(3))


def test_a_good_crop_passes(eye: np.ndarray) -> None:
    assert verdict(eye) is None
    assert verdict(synthetic_eye(False, 64, np.random.default_rng(4))) is None


def test_each_reason(eye: np.ndarray) -> None:
    assert verdict(eye, side_px=10.0) == "too_small"
    assert verdict(eye, inside=0.5) == "off_frame"
    assert verdict((eye * 0.05).astype(np.uint8)) == "underexposed"
    assert verdict(np.clip(eye.astype(int) + 200, 0, 255).astype(np.uint8)) == "overexposed"
    assert verdict(np.full((64, 64), 120, np.uint8) + (eye > 150).astype(np.uint8)) == "low_contrast"
    glare = eye.copy()
    glare[8:44, 8:44] = 255
    assert verdict(glare) == "glare"
    blocks = np.kron(np.random.default_rng(5).integers(0, 2, (4, 4)) * 200 + 20, np.ones((16, 16))).astype(np.uint8)
    assert verdict(blocks) is None
    assert verdict(blur(blocks, 10.0)) == "blurred"  # 10 px at 64 px: ~4 px at the model's 24 px
    assert verdict(blur(eye, 1.5)) is None  # mild blur the model copes with passes


def test_detail_does_not_depend_on_brightness_or_contrast(eye: np.ndarray) -> None:
    resized = resize_grey(eye.astype(np.float32), 24)
    assert detail_of(resized) == pytest.approx(detail_of(resized * 0.5 + 40), rel=1e-4)


def test_the_gate_can_be_switched_off(eye: np.ndarray) -> None:
    assert verdict(eye, side_px=1.0, config=QualityConfig(enabled=False)) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_inside": 1.5}, r"QualityConfig.min_inside = 1.5 is out of range"),
        ({"min_mean": 100.0, "max_mean": 50.0}, r"QualityConfig.max_mean = 50.0 is out of range"),
        ({"max_saturated": -0.1}, r"QualityConfig.max_saturated = -0.1 is out of range"),
    ],
)
def test_bad_quality_config_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(StreamConfigError, match=match):
        QualityConfig(**kwargs)
