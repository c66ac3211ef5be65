"""Sampling a rotated square out of a frame with numpy only (the runtime has no image library).

Both the landmark model's face crop and the classifier's eye crops are rotated squares: ``square_grid`` gives the
source coordinates of the output pixel centres, ``sample`` reads them (bilinear, or nearest for speed) with the border
replicated, and ``inside_fraction`` says how much of the square lay inside the frame (the quality gate's off-frame
test). Coordinates are continuous pixel positions: pixel (i, j) covers [j, j+1) x [i, i+1), its centre is j+0.5.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def _unit_grid(out: int) -> tuple[np.ndarray, np.ndarray]:
    t = ((np.arange(out, dtype=np.float32) + 0.5) / out - 0.5).astype(np.float32)
    u, v = np.meshgrid(t, t)
    u.setflags(write=False)
    v.setflags(write=False)
    return u, v


def square_grid(cx: float, cy: float, side: float, angle: float, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source (x, y) of each pixel centre of an out x out square of ``side`` pixels centred on (cx, cy), whose
    horizontal axis points along ``angle`` (radians, image y down)."""
    u, v = _unit_grid(out)
    c = np.float32(math.cos(angle) * side)
    s = np.float32(math.sin(angle) * side)
    xs = (c * u - s * v) + np.float32(cx)
    ys = (s * u + c * v) + np.float32(cy)
    return xs, ys


def inside_fraction(xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> float:
    """Fraction of the sample points that fall inside a width x height frame."""
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    return float(np.count_nonzero(inside)) / inside.size


def sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, bilinear: bool = True) -> np.ndarray:
    """Read ``image`` (H x W or H x W x C, any dtype) at continuous positions; float32 result of xs' shape (+ C)."""
    h, w = image.shape[:2]
    channels = image.shape[2] if image.ndim == 3 else 0
    flat = image.reshape(h * w, channels) if channels else image.reshape(h * w)
    shape = (*xs.shape, channels) if channels else xs.shape
    x = xs - np.float32(0.5)
    y = ys - np.float32(0.5)
    np.clip(x, 0.0, w - 1, out=x)
    np.clip(y, 0.0, h - 1, out=y)
    if not bilinear:
        idx = (y + np.float32(0.5)).astype(np.int32) * w + (x + np.float32(0.5)).astype(np.int32)
        np.minimum(idx, h * w - 1, out=idx)
        return np.take(flat, idx.ravel(), axis=0).reshape(shape).astype(np.float32)
    x0 = np.minimum(x.astype(np.int32), max(w - 2, 0))
    y0 = np.minimum(y.astype(np.int32), max(h - 2, 0))
    fx = (x - x0).ravel()
    fy = (y - y0).ravel()
    if channels:
        fx, fy = fx[:, None], fy[:, None]
    idx = (y0 * w + x0).ravel()
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    a = np.take(flat, idx, axis=0).astype(np.float32)
    b = np.take(flat, idx + dx, axis=0).astype(np.float32)
    c = np.take(flat, idx + dy, axis=0).astype(np.float32)
    d = np.take(flat, idx + dy + dx, axis=0).astype(np.float32)
    top = a + (b - a) * fx
    bottom = c + (d - c) * fx
    return (top + (bottom - top) * fy).reshape(shape)
