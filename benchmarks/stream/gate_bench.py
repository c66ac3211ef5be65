"""The quality gate measured on real crops: the distribution of its statistics over MRL and CEW, how many real crops
each default limit refuses, and what the gate does with degraded crops (blurred, darkened, over-exposed, glare) the
classifier would otherwise have to guess about: accuracy of the model on them and the share the gate refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.metrics import predict_open

STATS = ("mean", "std", "saturated", "detail")


def gaussian_blur(grey: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (reflected borders) of a float grey image."""
    if sigma <= 0:
        return grey
    radius = max(1, int(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(grey, radius, mode="reflect")
    rows = sum(k * padded[:, i : i + grey.shape[1]] for i, k in enumerate(kernel))
    return sum(k * rows[i : i + grey.shape[0], :] for i, k in enumerate(kernel))


def degradations() -> dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]:
    """Name -> grey [0, 255] float crop -> degraded crop. Blur sigmas are in pixels at the model's 24 px input."""
    def blur(sigma_model: float):
        return lambda g, _rng: gaussian_blur(g, sigma_model * g.shape[0] / 24.0)

    def glare(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = g.copy()
        h, w = g.shape
        r = 0.3 * min(h, w)
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        yy, xx = np.mgrid[0:h, 0:w]
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 255.0
        return out

    return {
        "none": lambda g, _rng: g,
        "blur 1 px": blur(1.0),
        "blur 2 px": blur(2.0),
        "blur 3 px": blur(3.0),
        "blur 5 px": blur(5.0),
        "dark x0.08": lambda g, _rng: g * 0.08,
        "dark x0.03": lambda g, _rng: g * 0.03,
        "bright +180": lambda g, _rng: np.minimum(g + 180.0, 255.0),
        "flat x0.05": lambda g, _rng: 128.0 + (g - g.mean()) * 0.05,
        "glare disc 30%": glare,
    }


def _stats(grey: np.ndarray, size: int):
    from eyesdk.preprocess import resize_grey
    from eyesdk.stream.quality import crop_stats

    return crop_stats(grey, resize_grey(grey, size))


def run(eye_state: Any, sources: Sequence[Path], sample: int = 3000, seed: int = 0,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from eyesdk.converters.datasets import read_sources
    from eyesdk.imagefile import read_image
    from eyesdk.preprocess import preprocess_grey, to_grey
    from eyesdk.stream.quality import QualityConfig, judge

    config = QualityConfig()
    size = eye_state.bundle.contract.size
    samples = read_sources([str(s) for s in sources])
    by_source: dict[str, dict[str, list[float]]] = {}
    refused: dict[str, dict[str, int]] = {}
    greys: list[tuple[np.ndarray, int]] = []
    rng = np.random.default_rng(seed)
    keep = set(rng.choice(len(samples), size=min(sample, len(samples)), replace=False).tolist())
    for i, s in enumerate(samples):
        grey = to_grey(read_image(s.path), "rgb")
        stats = _stats(grey, size)
        values = by_source.setdefault(s.source, {k: [] for k in STATS})
        for k in STATS:
            values[k].append(getattr(stats, k))
        reason = judge(stats, float(min(grey.shape)), 1.0, config) or "passed"
        counts = refused.setdefault(s.source, {})
        counts[reason] = counts.get(reason, 0) + 1
        if i in keep:
            greys.append((grey, s.label))
        if progress and i % 5000 == 0:
            progress(f"statistics {i}/{len(samples)}")
    distribution = {
        source: {k: {f"p{q}": float(np.percentile(v, q)) for q in (0.1, 0.5, 1, 5, 50, 95, 99, 99.5, 99.9)}
                 for k, v in values.items()}
        for source, values in by_source.items()
    }
    degraded = {}
    for name, make in degradations().items():
        crops, labels, passed = [], [], []
        for grey, label in greys:
            g = np.clip(make(grey, rng), 0.0, 255.0).astype(np.float32)
            crops.append(preprocess_grey(g, eye_state.bundle.contract))
            labels.append(label)
            passed.append(judge(_stats(g, size), float(min(g.shape)), 1.0, config) is None)
        batch = np.stack(crops)[:, None].astype(np.float32)
        y = np.asarray(labels)
        ok = predict_open(eye_state.logits(batch), eye_state.temperature, eye_state.threshold) == y
        passed_arr = np.asarray(passed)
        degraded[name] = {
            "n": len(y),
            "accuracy": float(ok.mean()),
            "refused": float(1.0 - passed_arr.mean()),
            "accuracy_of_passed": float(ok[passed_arr].mean()) if passed_arr.any() else None,
        }
        if progress:
            progress(f"{name}: accuracy {degraded[name]['accuracy']:.3f}, refused {degraded[name]['refused']:.3f}")
    return {
        "config": {f.name: getattr(config, f.name) for f in fields(config)},
        "refused_real": refused,
        "distribution": distribution,
        "degraded": degraded,
        "sample": len(greys),
    }


