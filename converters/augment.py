"""Batched, seeded augmentations aimed at cross-camera generalization.

They act on resized grey crops in [0, 1] (the output of eyesdk.preprocess.resize_grey / 255), *before* the contract's
per-crop standardization, so photometric changes (gamma, contrast, saturation, noise, blur, JPEG blocking, low
resolution, specular glints) look like what other cameras produce. Geometry: flip, scale, shift and rotation jitter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

# Standard JPEG luminance quantization table (ITU T.81, Annex K).
_JPEG_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=torch.float32)


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    scale: tuple[float, float] = (0.85, 1.15)
    shift: float = 0.08  # fraction of the side
    rotate_deg: float = 12.0
    gamma: float = 0.5  # log-gamma uniform in [-g, g]
    contrast: tuple[float, float] = (0.6, 1.4)
    brightness: float = 0.15
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.3)
    noise_p: float = 0.3
    noise_sigma: float = 0.04
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (15, 80)
    lowres_p: float = 0.25
    lowres_min: int = 10
    glint_p: float = 0.3
    glint_max: int = 3
    glint_radius: tuple[float, float] = (0.5, 3.0)  # pixels at the model's input size
    glint_flat: float = 0.5  # share of glints drawn saturated with a hard edge (big lens reflections), not Gaussian
    aspect: tuple[float, float] = (1.0, 1.0)  # extra vertical scale: narrow or wide-open eyes
    frame_p: float = 0.3  # dark spectacle-frame band across the crop, with a tinted lens region below/above it
    frame_width: tuple[float, float] = (0.6, 2.2)  # band thickness in pixels at the input size
    frame_dark: tuple[float, float] = (0.3, 0.85)  # how much of the brightness the band takes away
    frame_edge: tuple[float, float] = (-0.05, 0.3)  # band centre's distance from the top or bottom, share of side
    # Sources whose crops get frames and glints (empty = every crop): both imitate infrared illuminators on glasses;
    # on visible-light crops a glint is a real catch-light of an open eye, and hiding that cue there costs accuracy.
    targeted_sources: tuple[str, ...] = ("mrl",)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def _mask(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def _chosen(n: int, p: float, gen: torch.Generator, eligible: torch.Tensor | None) -> torch.Tensor:
    """A share p of the crops, among the eligible ones (all when eligible is None)."""
    chosen = _mask(n, p, gen)
    return chosen if eligible is None else chosen & eligible


def targeted_crops(sources: Sequence[str], cfg: AugmentConfig) -> torch.Tensor | None:
    """Bool mask of the crops whose source is in ``cfg.targeted_sources`` (None when every crop is targeted)."""
    if not cfg.targeted_sources:
        return None
    wanted = set(cfg.targeted_sources)
    return torch.tensor([s in wanted for s in sources], dtype=torch.bool)


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    flip = torch.where(_mask(n, cfg.flip, gen), -1.0, 1.0)
    scale = _uniform(n, *cfg.scale, gen)
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen) * math.pi / 180
    tx, ty = (_uniform(n, -cfg.shift, cfg.shift, gen) * 2 for _ in range(2))
    aspect = _uniform(n, *cfg.aspect, gen) if cfg.aspect != (1.0, 1.0) else torch.ones(n)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                         torch.stack([sin * flip / aspect, cos / aspect, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def photometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    gamma = torch.exp(_uniform(n, -cfg.gamma, cfg.gamma, gen)).view(shape)
    x = x.clamp(0, 1) ** gamma
    contrast = _uniform(n, *cfg.contrast, gen).view(shape)
    bright = _uniform(n, -cfg.brightness, cfg.brightness, gen).view(shape)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    chosen = _mask(n, cfg.blur_p, gen)
    if not chosen.any():
        return x
    sigma = _uniform(n, *cfg.blur_sigma, gen)[chosen]
    r = torch.arange(-2, 3, dtype=torch.float32)
    k1 = torch.exp(-(r[None, :] ** 2) / (2 * sigma[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    kernels = (k1[:, :, None] * k1[:, None, :]).unsqueeze(1)  # (m, 1, 5, 5)
    sub = x[chosen].transpose(0, 1)  # (1, m, H, W): one group per image
    blurred = F.conv2d(F.pad(sub, (2, 2, 2, 2), mode="reflect"), kernels, groups=kernels.shape[0])
    out = x.clone()
    out[chosen] = blurred.transpose(0, 1)
    return out


def add_noise(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    sigma = _uniform(n, 0, cfg.noise_sigma, gen) * _mask(n, cfg.noise_p, gen)
    return (x + torch.randn(x.shape, generator=gen) * sigma.view(n, 1, 1, 1)).clamp(0, 1)


def _dct_matrix(n: int = 8) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32)
    d = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d


_DCT8 = _dct_matrix()


def jpeg_artifacts(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Real JPEG luminance coding on 8x8 blocks: DCT, quantize with the quality-scaled table, inverse DCT."""
    n, _, h, w = x.shape
    chosen = _mask(n, cfg.jpeg_p, gen)
    if not chosen.any() or h % 8 or w % 8:
        return x
    m = int(chosen.sum())
    quality = _uniform(m, *cfg.jpeg_quality, gen)
    factor = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality) / 100
    table = (_JPEG_LUMA[None] * factor.view(m, 1, 1)).clamp(min=1)  # (m, 8, 8)
    blocks = (x[chosen, 0] * 255 - 128).reshape(m, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeffs = _DCT8 @ blocks @ _DCT8.T
    q = table[:, None, None]
    restored = _DCT8.T @ (torch.round(coeffs / q) * q) @ _DCT8
    out = x.clone()
    out[chosen, 0] = ((restored.permute(0, 1, 3, 2, 4).reshape(m, h, w) + 128) / 255).clamp(0, 1)
    return out


def low_resolution(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Down- then up-sample a share of the batch, as a small eye in a far or low-resolution camera looks."""
    n, _, h, _ = x.shape
    chosen = _mask(n, cfg.lowres_p, gen)
    if not chosen.any():
        return x
    side = int(torch.randint(cfg.lowres_min, h, (1,), generator=gen))
    small = F.interpolate(x[chosen], size=(side, side), mode="area")
    out = x.clone()
    out[chosen] = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out


def specular_glints(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
                    eligible: torch.Tensor | None = None) -> torch.Tensor:
    """Add 1..glint_max small saturated spots, as infrared illuminators leave on glasses and corneas.

    Bright glints inflate a crop's standard deviation and so squash the eye's contrast after standardization;
    the model has to learn to look past them (subjects with glasses under IR are the hardest slice of MRL).
    """
    n, _, h, w = x.shape
    chosen = _chosen(n, cfg.glint_p, gen, eligible)
    if not chosen.any():
        return x
    m = int(chosen.sum())
    k = cfg.glint_max
    cy = torch.rand(m, k, generator=gen) * h
    cx = torch.rand(m, k, generator=gen) * w
    radius = _uniform(m * k, *cfg.glint_radius, gen).view(m, k)
    present = (torch.arange(k)[None, :] < torch.randint(1, k + 1, (m, 1), generator=gen)).float()
    flat = ((torch.rand(m, k, generator=gen) < cfg.glint_flat) if cfg.glint_flat > 0
            else torch.zeros(m, k, dtype=torch.bool))[..., None, None]
    yy = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1)
    xx = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w)
    d2 = (yy - cy[..., None, None]) ** 2 + (xx - cx[..., None, None]) ** 2
    r2 = radius[..., None, None] ** 2
    gaussian = torch.exp(-d2 / (2 * r2))
    saturated = ((r2 - d2) / (2 * radius[..., None, None] * 0.5 + 1e-6)).clamp(0, 1)  # flat top, ~0.5 px edge
    spots = (torch.where(flat, saturated, gaussian) * present[..., None, None]).amax(dim=1)
    out = x.clone()
    out[chosen, 0] = torch.maximum(x[chosen, 0], spots.clamp(0, 1))
    return out


def spectacle_frames(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
                     eligible: torch.Tensor | None = None) -> torch.Tensor:
    """Darken a slightly curved, tilted band across a share of the crops, as a glasses frame crossing the eye crop,
    and change the contrast on one side of it (the lens). Label-agnostic on purpose: in MRL some subjects wear glasses
    almost only with closed eyes, and a frame must not become a cue for either state.
    """
    n, _, h, w = x.shape
    if cfg.frame_p <= 0:
        return x
    chosen = _chosen(n, cfg.frame_p, gen, eligible)
    if not chosen.any():
        return x
    m = int(chosen.sum())
    yy = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xx = (torch.arange(w, dtype=torch.float32).view(1, 1, w) - w / 2) / w  # -0.5 .. 0.5
    edge = _uniform(m, *cfg.frame_edge, gen)  # a rim runs near the top or the bottom of an eye crop
    y0 = torch.where(_mask(m, 0.5, gen), edge, 1 - edge).view(m, 1, 1) * h
    tilt = _uniform(m, -0.25, 0.25, gen).view(m, 1, 1) * h
    bend = _uniform(m, -0.6, 0.6, gen).view(m, 1, 1) * h
    centre = y0 + tilt * xx + bend * xx**2
    half = _uniform(m, *cfg.frame_width, gen).view(m, 1, 1) / 2
    band = (half + 0.5 - (yy - centre).abs()).clamp(0, 1)  # 1 inside, ~1 px soft edge
    dark = _uniform(m, *cfg.frame_dark, gen).view(m, 1, 1)
    lens_side = torch.where(_mask(m, 0.5, gen), 1.0, -1.0).view(m, 1, 1)
    lens = ((yy - centre) * lens_side > half).float()
    lens_contrast = _uniform(m, 0.6, 1.0, gen).view(m, 1, 1)
    img = x[chosen, 0]
    mean = img.mean(dim=(1, 2), keepdim=True)
    img = torch.where(lens.bool(), (img - mean) * lens_contrast + mean, img)
    out = x.clone()
    out[chosen, 0] = (img * (1 - dark * band)).clamp(0, 1)
    return out


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
            targeted: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 1, S, S) crops in [0, 1] -> augmented crops in [0, 1], all randomness from gen.

    ``targeted`` (bool, (N,)) marks the crops that may get frames and glints (see ``AugmentConfig.targeted_sources``);
    None means all of them.
    """
    x = random_affine(x, cfg, gen)
    x = low_resolution(x, cfg, gen)
    x = photometric(x, cfg, gen)
    x = spectacle_frames(x, cfg, gen, targeted)
    x = specular_glints(x, cfg, gen, targeted)
    x = gaussian_blur(x, cfg, gen)
    x = add_noise(x, cfg, gen)
    return jpeg_artifacts(x, cfg, gen)
