"""MediaPipe's short-range face detector (BlazeFace) decoded in numpy: anchors, boxes, keypoints, weighted NMS.

The model sees the frame letterboxed into 128 x 128 RGB in [-1, 1] and scores 896 SSD anchors (16 x 16 x 2 at stride
8, 8 x 8 x 6 at stride 16); each anchor regresses a box and six keypoints (the person's right eye, left eye, nose
tip, mouth centre, right and left ear tragion). Decoding follows MediaPipe's face_detection_short_range graph: scale
128, fixed-size anchors, sigmoid scores clipped at +-100, minimum score 0.5, weighted non-maximum suppression at IoU
0.3. The frame is first reduced by whole-pixel block averaging (an area filter, so the model sees no aliasing) and
then sampled bilinearly into the letterbox.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .runner import TfliteModel
from .warp import sample

INPUT = 128
MIN_SCORE = 0.5
NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """A face in frame pixels: score, box (x0, y0, x1, y1) and keypoints (6, 2) (x, y)."""

    score: float
    box: tuple[float, float, float, float]
    keypoints: np.ndarray

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """(896, 2) anchor centres in [0, 1], in the model's output order."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        grid = INPUT // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    result = np.concatenate(out).astype(np.float32)
    result.setflags(write=False)
    return result


def block_reduce(frame: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks (the frame cropped to whole blocks): an area-filter downscale, float32."""
    if factor <= 1:
        return frame.astype(np.float32)
    h, w = frame.shape[:2]
    h, w = h - h % factor, w - w % factor
    acc = np.uint16 if factor <= 16 else np.uint32
    rows = frame[:h, :w].reshape(h, w // factor, factor, *frame.shape[2:])
    across = rows[:, :, 0].astype(acc)
    for k in range(1, factor):
        across += rows[:, :, k]
    blocks = across.reshape(h // factor, factor, w // factor, *frame.shape[2:])
    total = blocks[:, 0].copy()
    for k in range(1, factor):
        total += blocks[:, k]
    return total.astype(np.float32) * np.float32(1.0 / (factor * factor))


def letterbox(frame: np.ndarray, rgb: bool) -> tuple[np.ndarray, float, float, float]:
    """Frame -> (128 x 128 x 3 RGB float in [-1, 1], scale, pad_x, pad_y); frame x = (input x - pad_x) / scale."""
    h, w = frame.shape[:2]
    factor = max(1, int(max(h, w) // INPUT))
    reduced = block_reduce(frame, factor)
    rh, rw = reduced.shape[:2]
    scale = INPUT / max(rh, rw)
    pad_x, pad_y = (INPUT - rw * scale) / 2, (INPUT - rh * scale) / 2
    t = np.arange(INPUT, dtype=np.float32) + np.float32(0.5)
    xs = np.broadcast_to(((t - pad_x) / scale)[None, :], (INPUT, INPUT))
    ys = np.broadcast_to(((t - pad_y) / scale)[:, None], (INPUT, INPUT))
    pixels = sample(reduced, np.ascontiguousarray(xs), np.ascontiguousarray(ys))
    inside_x = (t >= pad_x) & (t < INPUT - pad_x)
    inside_y = (t >= pad_y) & (t < INPUT - pad_y)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    elif not rgb:
        pixels = pixels[:, :, ::-1]
    x = pixels * np.float32(2.0 / 255.0) - np.float32(1.0)
    x[~inside_y] = 0.0  # the letterbox bars: zero, as MediaPipe pads
    x[:, ~inside_x] = 0.0
    # scale and pads in frame-pixel terms: reduced pixel = frame pixel / factor
    return x, scale / factor, pad_x, pad_y


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray,
                 threshold: float = NMS_IOU) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED suppression: each kept face is the score-weighted mean of the candidates it overlaps."""
    order = np.argsort(-scores)
    scores, boxes, keypoints = scores[order], boxes[order], keypoints[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        overlap = _iou(boxes[remaining[0]], boxes[remaining])
        group = remaining[overlap > threshold]
        group = group if group.size else remaining[:1]
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(axis=0) / weights.sum()
        points = (keypoints[group] * weights[:, :, None]).sum(axis=0) / weights.sum()
        out.append((float(scores[remaining[0]]), box, points))
        remaining = remaining[overlap <= threshold]
    return out


class FaceDetector:
    """``detect(frame) -> [Detection]`` best first, for a validated uint8 grey or BGR/RGB frame."""

    def __init__(self, model: TfliteModel, rgb: bool = False, min_score: float = MIN_SCORE) -> None:
        self.model = model
        self.rgb = rgb
        self.min_score = min_score

    def detect(self, frame: np.ndarray) -> list[Detection]:
        x, scale, pad_x, pad_y = letterbox(frame, self.rgb)
        regressors, classificators = self.model.run(x[None])
        raw = regressors.reshape(-1, 16)
        logits = np.clip(classificators.reshape(-1), -100.0, 100.0)
        keep = logits > math.log(self.min_score / (1.0 - self.min_score))
        if not keep.any():
            return []
        raw, logits, centres = raw[keep], logits[keep], anchors()[keep]
        scores = 1.0 / (1.0 + np.exp(-logits))
        cx = raw[:, 0] / INPUT + centres[:, 0]
        cy = raw[:, 1] / INPUT + centres[:, 1]
        w, h = raw[:, 2] / INPUT, raw[:, 3] / INPUT
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        points = raw[:, 4:16].reshape(-1, 6, 2) / INPUT + centres[:, None, :]
        detections = []
        for score, box, keypoints in weighted_nms(scores, boxes, points):
            frame_box = (box * INPUT - np.array([pad_x, pad_y, pad_x, pad_y])) / scale
            frame_points = (keypoints * INPUT - np.array([pad_x, pad_y])) / scale
            detections.append(Detection(score, tuple(float(v) for v in frame_box), frame_points))
        return detections
