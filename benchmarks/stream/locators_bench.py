"""Locators on real faces from registry packages: detection rate, false detections, eye-centre error.

- scikit-image's ``astronaut.png`` (public domain) placed in 640 x 480 frames under known similarity transforms
  (scale, roll, position, brightness). Ground truth: the face mesh's eye centres on the untransformed image mapped
  through the transform, so the error measures how well each locator follows a face it has seen upright (a
  self-consistency check, stated as such), in units of the eye's width.
- scikit-image's ``lfw_subset.npy``: 100 Labeled-Faces-in-the-Wild faces and 100 non-faces, 25 x 25, upscaled x8 into
  320 x 240 frames: detection rate on the faces, false detections on the non-faces.
- The Haar locator's face geometry fitted on the same frames: where the mesh puts the eyes inside the cascade's box.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TRANSFORMS = [  # (scale, roll degrees, centre x, centre y, brightness)
    (1.0, 0.0, 320, 240, 1.0), (0.5, 0.0, 320, 240, 1.0), (0.75, 0.0, 200, 200, 1.0), (1.4, 0.0, 320, 300, 1.0),
    (1.0, 15.0, 320, 240, 1.0), (1.0, -15.0, 320, 240, 1.0), (1.0, 30.0, 320, 240, 1.0), (0.75, -30.0, 400, 260, 1.0),
    (1.0, 0.0, 320, 240, 0.45), (1.0, 0.0, 320, 240, 1.6), (0.6, 10.0, 450, 180, 0.8), (1.2, -8.0, 280, 260, 1.0),
]


def skimage_data(name: str) -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-image is not installed (pip install scikit-image): its wheel ships the "
                                "real face images this benchmark uses")
    return Path(spec.origin).parent / "data" / name


def astronaut_bgr() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(skimage_data("astronaut.png")).convert("RGB"))[:, :, ::-1].copy()


def transformed(source: np.ndarray, scale: float, degrees: float, cx: float, cy: float, gain: float,
                size: tuple[int, int] = (480, 640)) -> tuple[np.ndarray, Callable[[float, float], tuple]]:
    """(frame, forward map source point -> frame point) of a similarity transform of the source about its centre."""
    from eyesdk.locators.warp import sample

    h, w = size
    sh, sw = source.shape[:2]
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + np.float32(0.5)
    dx, dy = (xx - cx) / scale, (yy - cy) / scale
    px = sw / 2 + c * dx + s * dy  # inverse rotation
    py = sh / 2 - s * dx + c * dy
    inside = (px >= 0) & (px < sw) & (py >= 0) & (py < sh)
    frame = sample(source, px.astype(np.float32), py.astype(np.float32)) * np.float32(gain)
    frame[~inside] = 40.0
    frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)

    def forward(x: float, y: float) -> tuple[float, float]:
        u, v = (x - sw / 2) * scale, (y - sh / 2) * scale
        return cx + c * u - s * v, cy + s * u + c * v

    return frame, forward


def _errors(eyes: tuple, truth: dict[str, tuple[float, float]], width: float) -> list[float]:
    found = {e.side: e for e in eyes}
    return [math.hypot(found[side].center[0] - x, found[side].center[1] - y) / width
            for side, (x, y) in truth.items() if side in found]


def run(models: Any = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from eyesdk.locators import HaarLocator, MediaPipeLocator

    source = astronaut_bgr()
    reference = MediaPipeLocator(models=models, tracking=False).locate(source)
    if len(reference) != 2:
        raise RuntimeError("the face mesh did not find both eyes on astronaut.png; cannot build the reference")
    ref = {e.side: e.center for e in reference}
    ref_width = float(np.mean([e.width for e in reference]))
    locators: dict[str, Any] = {"mediapipe": lambda: MediaPipeLocator(models=models, tracking=False)}
    try:
        HaarLocator()
        locators["haar"] = HaarLocator
    except ImportError as exc:
        if progress:
            progress(f"haar skipped: {exc}")
    results: dict[str, Any] = {}
    geometry = []
    for name, make in locators.items():
        locator = make()
        found, errors, per = 0, [], []
        for transform in TRANSFORMS:
            frame, forward = transformed(source, *transform)
            truth = {side: forward(*xy) for side, xy in ref.items()}
            eyes = locator.locate(frame)
            err = _errors(eyes, truth, ref_width * transform[0])
            found += len(eyes) == 2
            errors += err
            per.append({"transform": list(transform), "eyes": len(eyes),
                        "error_in_eye_widths": [round(e, 3) for e in err]})
            if name == "haar":
                faces = locator.faces(frame)
                if faces:
                    x, y, w, h = faces[0]
                    geometry.append([(truth["left"][0] - x) / w, (truth["right"][0] - x) / w,
                                     (0.5 * (truth["left"][1] + truth["right"][1]) - y) / h,
                                     ref_width * transform[0] / w])
        results[name] = {"frames": len(TRANSFORMS), "both_eyes_found": found,
                         "mean_error_in_eye_widths": float(np.mean(errors)) if errors else None,
                         "max_error_in_eye_widths": float(np.max(errors)) if errors else None, "per_frame": per}
        if progress:
            progress(f"astronaut {name}: {found}/{len(TRANSFORMS)} frames, mean error "
                     f"{results[name]['mean_error_in_eye_widths']}")
    lfw = np.load(skimage_data("lfw_subset.npy"))
    frames = []
    for image in lfw:
        frame = np.full((240, 320), 40, np.uint8)
        frame[20:220, 60:260] = np.kron((image * 255).astype(np.uint8), np.ones((8, 8), np.uint8))
        frames.append(frame)
    detection = {}
    mesh = MediaPipeLocator(models=models, tracking=False)
    for name, make in locators.items():
        locator = make()
        hits = []
        for i, frame in enumerate(frames):
            hits.append(len(locator.locate(frame)) == 2)
            if name == "haar" and i < 100 and hits[-1]:  # geometry from every face both locators find
                eyes = {e.side: e for e in mesh.locate(frame)}
                faces = locator.faces(frame)
                if len(eyes) == 2 and faces:
                    x, y, w, h = faces[0]
                    geometry.append([(eyes["left"].center[0] - x) / w, (eyes["right"].center[0] - x) / w,
                                     (0.5 * (eyes["left"].center[1] + eyes["right"].center[1]) - y) / h,
                                     0.5 * (eyes["left"].width + eyes["right"].width) / w])
        detection[name] = {"faces_found": int(sum(hits[:100])), "faces": 100,
                           "non_faces_found": int(sum(hits[100:])), "non_faces": 100}
        if progress:
            progress(f"lfw {name}: {detection[name]}")
    fitted = None
    if geometry:
        g = np.median(np.asarray(geometry), axis=0)
        fitted = {"left_x": float(g[0]), "right_x": float(g[1]), "eye_y": float(g[2]), "eye_width": float(g[3]),
                  "frames": len(geometry)}
    return {"reference": {"eye_width": ref_width, "eyes": {k: list(v) for k, v in ref.items()}},
            "astronaut": results, "lfw_subset": detection, "haar_geometry_fitted": fitted}
