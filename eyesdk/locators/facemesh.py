"""MediaPipe's 468-point face mesh on a rotated face crop, and the eye geometry read from it.

The model sees a square region of interest (ROI) around the face, rotated upright, as 192 x 192 RGB in [0, 1]; it
returns 468 (x, y, z) points in input pixels and a face-presence logit. ROIs follow MediaPipe's face graphs: from a
detection, the box centre, 1.5 x the box's longer side, rotated so the eye keypoints are level; from the previous
frame's landmarks (tracking), the bounds of the points in the rotated frame (rotation from the outer eye corners),
again x 1.5. The eye corners are mesh points 33 / 133 (the eye on the image's left) and 362 / 263 (image right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import LEFT, RIGHT, EyeLocation
from .blazeface import Detection
from .runner import TfliteModel
from .warp import sample, square_grid

INPUT = 192
ROI_SCALE = 1.5
# (side in the image, corner on the image's left, corner on the image's right)
EYE_CORNERS = ((LEFT, 33, 133), (RIGHT, 362, 263))
OUTER_CORNERS = (33, 263)


@dataclass(frozen=True)
class Roi:
    cx: float
    cy: float
    side: float
    angle: float


def roi_from_detection(detection: Detection) -> Roi:
    x0, y0, x1, y1 = detection.box
    (ax, ay), (bx, by) = detection.keypoints[0], detection.keypoints[1]  # eye on the image's left, then right
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, ROI_SCALE * max(x1 - x0, y1 - y0), math.atan2(by - ay, bx - ax))


def roi_from_landmarks(points: np.ndarray) -> Roi:
    (ax, ay), (bx, by) = points[OUTER_CORNERS[0]], points[OUTER_CORNERS[1]]
    angle = math.atan2(by - ay, bx - ax)
    c, s = math.cos(angle), math.sin(angle)
    u = points[:, 0] * c + points[:, 1] * s  # coordinates in the rotated (upright) frame
    v = -points[:, 0] * s + points[:, 1] * c
    u0, u1, v0, v1 = u.min(), u.max(), v.min(), v.max()
    uc, vc = (u0 + u1) / 2, (v0 + v1) / 2
    return Roi(uc * c - vc * s, uc * s + vc * c, ROI_SCALE * max(u1 - u0, v1 - v0), angle)


def eyes_from_landmarks(points: np.ndarray, confidence: float) -> tuple[EyeLocation, ...]:
    eyes = []
    for side, a, b in EYE_CORNERS:
        (ax, ay), (bx, by) = points[a], points[b]
        width = math.hypot(bx - ax, by - ay)
        eyes.append(EyeLocation(side, (float(ax + bx) / 2, float(ay + by) / 2), float(width),
                                math.atan2(by - ay, bx - ax), float(confidence), "landmarks"))
    return tuple(eyes)


class FaceMesh:
    """``landmarks(frame, roi) -> (points (468, 2) in frame pixels, presence in [0, 1])``."""

    def __init__(self, model: TfliteModel, rgb: bool = False, bilinear: bool = False) -> None:
        self.model = model
        self.rgb = rgb
        self.bilinear = bilinear

    def landmarks(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        xs, ys = square_grid(roi.cx, roi.cy, roi.side, roi.angle, INPUT)
        pixels = sample(frame, xs, ys, bilinear=self.bilinear)
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        elif not self.rgb:
            pixels = pixels[:, :, ::-1]
        mesh, presence = self.model.run((pixels * np.float32(1.0 / 255.0))[None])
        local = mesh.reshape(-1, 3)[:, :2].astype(np.float64) / INPUT - 0.5  # in ROI units, centred
        c, s = math.cos(roi.angle) * roi.side, math.sin(roi.angle) * roi.side
        points = np.empty_like(local)
        points[:, 0] = roi.cx + c * local[:, 0] - s * local[:, 1]
        points[:, 1] = roi.cy + s * local[:, 0] + c * local[:, 1]
        flag = float(np.clip(presence.reshape(-1)[0], -100.0, 100.0))
        return points, 1.0 / (1.0 + math.exp(-flag))
