"""The augmentations added for glasses and glints: frames, saturated glints, aspect jitter; off means untouched."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from eyesdk.converters.augment import (  # noqa: E402
    AugmentConfig,
    augment,
    random_affine,
    spectacle_frames,
    specular_glints,
)

OFF = AugmentConfig(flip=0, scale=(1, 1), shift=0, rotate_deg=0, gamma=0, contrast=(1, 1), brightness=0, blur_p=0,
                    noise_p=0, jpeg_p=0, lowres_p=0, glint_p=0, glint_flat=0, frame_p=0, targeted_sources=())


def _grey(n: int = 16, value: float = 0.5) -> torch.Tensor:
    return torch.full((n, 1, 24, 24), value)


def test_frames_darken_a_band_and_stay_in_range() -> None:
    cfg = dataclasses.replace(OFF, frame_p=1.0, frame_dark=(0.8, 0.8))
    out = spectacle_frames(_grey(), cfg, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1
    dark_rows = (out[:, 0] < 0.2).any(dim=2).sum(dim=1)  # rows of each crop crossed by the frame
    assert (dark_rows >= 1).all() and (dark_rows <= 12).all()


def test_off_augmentations_do_not_touch_the_crops_or_the_random_stream() -> None:
    x = torch.rand(8, 1, 24, 24)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert spectacle_frames(x, OFF, g1) is x
    assert torch.equal(random_affine(x, dataclasses.replace(OFF, aspect=(1.0, 1.0)), g1),
                       random_affine(x, OFF, g2))
    assert torch.equal(torch.rand(1, generator=g1), torch.rand(1, generator=g2))


def test_saturated_glints_reach_white_over_more_pixels_than_gaussian_ones() -> None:
    base = dataclasses.replace(OFF, glint_p=1.0, glint_max=1, glint_radius=(2.5, 2.5))
    soft = specular_glints(_grey(32, 0.2), base, torch.Generator().manual_seed(1))
    hard = specular_glints(_grey(32, 0.2), dataclasses.replace(base, glint_flat=1.0), torch.Generator().manual_seed(1))
    assert (hard >= 0.999).sum() > 3 * (soft >= 0.999).sum()


def test_aspect_jitter_stretches_vertically_only() -> None:
    x = torch.zeros(1, 1, 24, 24)
    x[..., 10:14, :] = 1.0  # a horizontal bar
    cfg = dataclasses.replace(OFF, aspect=(1.5, 1.5))
    out = random_affine(x, cfg, torch.Generator().manual_seed(0))
    rows = (out[0, 0] > 0.5).any(dim=1).sum()
    cols = (out[0, 0] > 0.5).any(dim=0).sum()
    assert rows >= 5 and cols == 24


def test_full_pipeline_with_the_new_options_is_seeded() -> None:
    cfg = AugmentConfig(frame_p=0.5, glint_flat=0.5, glint_radius=(0.5, 3.0), aspect=(0.8, 1.2))
    x = torch.rand(16, 1, 24, 24)
    a = augment(x, cfg, torch.Generator().manual_seed(5))
    b = augment(x, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_frames_and_glints_touch_only_targeted_sources() -> None:
    from eyesdk.converters.augment import targeted_crops

    cfg = dataclasses.replace(OFF, frame_p=1.0, glint_p=1.0, targeted_sources=("mrl",))
    mask = targeted_crops(["mrl", "cew"] * 8, cfg)
    assert mask.tolist() == [True, False] * 8
    assert targeted_crops(["mrl"], OFF) is None  # no targeting: every crop may get them
    x = _grey(16, 0.5)
    out = augment(x, cfg, torch.Generator().manual_seed(0), mask)
    assert torch.equal(out[~mask], x[~mask])
    assert not torch.equal(out[mask], x[mask])
