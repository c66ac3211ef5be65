"""Which crop the classifier likes: the crop recipe's scale (crop side / eye width), measured two ways.

1. How the training crops are framed: MediaPipe's iris-landmark model (fetched with ``eyesdk models fetch-locator
   --iris``) finds the eye corners (its contour points 0 and 8) in each crop resized to its 64 x 64 input; side /
   corner distance is the crop's scale. A check that it measures the crop and not its own habit: the same crops cut
   to their central 80 % must measure 0.8 x as wide.
2. What the classifier does with crops cut by the stream's own recipe (``eyesdk.locators.crop.crop_eye``) at each
   scale around those corners: balanced accuracy per scale, with and without roll correction, on crops whose own
   framing is wide enough to cut the largest scale without running off the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

IRIS_INPUT = 64
SCALES = (1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0)


def corners(model: Any, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye corners (x, y) in the crop's pixels, from the iris model's contour points 0 and 8."""
    from eyesdk.preprocess import resize_grey

    h, w = grey.shape
    small = resize_grey(grey, IRIS_INPUT) / 255.0
    contour, _ = model.run(np.repeat(small[:, :, None], 3, axis=2)[None].astype(np.float32))
    points = contour.reshape(-1, 3)[:, :2].astype(np.float64)
    scale = np.array([w / IRIS_INPUT, h / IRIS_INPUT])
    a, b = points[0] * scale, points[8] * scale
    return (a, b) if a[0] <= b[0] else (b, a)


def run(eye_state: Any, samples: Sequence[Any], progress: Callable[[str], None] | None = None,
        models: Path | None = None) -> dict[str, Any]:
    from eyesdk.imagefile import read_image
    from eyesdk.locators.base import EyeLocation
    from eyesdk.locators.crop import CropRecipe, crop_eye
    from eyesdk.locators.models import model_path
    from eyesdk.locators.runner import TfliteModel
    from eyesdk.preprocess import preprocess_grey, to_grey

    model = TfliteModel(model_path("iris_landmarks", models))
    ratios, shrunk, found = [], [], []
    for i, sample in enumerate(samples):
        grey = to_grey(read_image(sample.path), "rgb")
        a, b = corners(model, grey)
        width = float(np.hypot(*(b - a)))
        if width < 2.0:
            continue
        side = float(min(grey.shape))
        ratios.append(side / width)
        found.append((grey, a, b, width, sample.label, sample.source))
        if i % 10 == 0:  # the framing check: the central 80 % must measure 0.8 x as wide
            h, w = grey.shape
            inner = grey[round(0.1 * h): round(0.9 * h), round(0.1 * w): round(0.9 * w)]
            a2, b2 = corners(model, inner)
            shrunk.append((float(min(inner.shape)) / float(np.hypot(*(b2 - a2)))) / (side / width))
        if progress and i % 1000 == 0:
            progress(f"corners {i}/{len(samples)}")
    ratios_arr = np.asarray(ratios)
    by_source = {}
    for source in sorted({f[5] for f in found}):
        r = np.asarray([side_ratio for side_ratio, f in zip(ratios, found, strict=True) if f[5] == source])
        by_source[source] = {"n": len(r), **{f"p{q}": float(np.percentile(r, q)) for q in (10, 25, 50, 75, 90)}}
    wide = [f for f, r in zip(found, ratios, strict=True) if r >= max(SCALES)]
    accuracy: dict[str, dict[str, float]] = {}
    for roll in (True, False):
        key = "roll-corrected" if roll else "upright"
        accuracy[key] = {}
        for scale in SCALES:
            recipe = CropRecipe(scale=scale, roll=roll)
            batch, labels = [], []
            for grey, a, b, width, label, _source in wide:
                eye = EyeLocation("left", (float(a[0] + b[0]) / 2, float(a[1] + b[1]) / 2), width,
                                  float(np.arctan2(b[1] - a[1], b[0] - a[0])))
                crop = crop_eye(grey.astype(np.uint8), eye, recipe)
                batch.append(preprocess_grey(crop.pixels.astype(np.float32), eye_state.bundle.contract))
                labels.append(label)
            if not batch:
                continue
            z = eye_state.logits(np.stack(batch)[:, None].astype(np.float32))
            accuracy[key][f"{scale:g}"] = _balanced(eye_state, z, np.asarray(labels))
            if progress:
                progress(f"{key} scale {scale}: balanced accuracy {accuracy[key][f'{scale:g}']:.4f}")
    own = []
    for grey, _a, _b, _w, _label, _s in wide:
        own.append(preprocess_grey(grey, eye_state.bundle.contract))
    own_acc = _balanced(eye_state, eye_state.logits(np.stack(own)[:, None].astype(np.float32)),
                        np.asarray([f[4] for f in wide])) if own else None
    return {
        "crops": len(found),
        "scale_of_training_crops": {"all": {f"p{q}": float(np.percentile(ratios_arr, q)) for q in (10, 25, 50, 75, 90)},
                                    **by_source},
        "framing_check_ratio_of_80pct_crop": {"n": len(shrunk), "median": float(np.median(shrunk)) if shrunk else None},
        "wide_enough_crops": len(wide),
        "balanced_accuracy_by_scale": accuracy,
        "balanced_accuracy_of_the_crops_as_they_are": own_acc,
    }


def samples_of(sources: Sequence[Path], subjects: set[str] | None, limit: int, seed: int = 0) -> list[Any]:
    from eyesdk.converters.datasets import read_sources

    from ..data import subsample

    found = [s for s in read_sources([str(p) for p in sources]) if subjects is None or s.subject in subjects]
    return subsample(found, limit, seed)


def _balanced(eye_state: Any, raw: np.ndarray, y: np.ndarray) -> float:
    """Balanced accuracy of raw logits under the bundle's own decision rule (eyesdk.metrics, as everywhere)."""
    from eyesdk.metrics import balanced_accuracy, predict_open

    return balanced_accuracy(y, predict_open(raw, eye_state.temperature, eye_state.threshold))
