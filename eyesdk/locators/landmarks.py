"""The default locator: MediaPipe's face detector + 468-point face mesh, run on eyesdk's own backends.

With ``tracking=True`` (the default) the face is detected once; every later frame runs only the mesh, on the region
the previous frame's landmarks give, and the detector runs again only when the mesh's face-presence score drops
below ``min_presence`` (the face moved away, turned, or was lost) or every ``redetect_every`` frames when set. The
model files come from ``eyesdk models fetch-locator`` (eyesdk.locators.models).
"""

from __future__ import annotations

import os

import numpy as np

from .base import EyeLocation, as_frame
from .blazeface import FaceDetector
from .facemesh import FaceMesh, Roi, eyes_from_landmarks, roi_from_detection, roi_from_landmarks
from .models import model_path
from .runner import TfliteModel

MAX_CANDIDATES = 3  # detections tried, by score, until the mesh confirms one (a body can score 0.5 as a "face")


class MediaPipeLocator:
    name = "mediapipe"

    def __init__(
        self,
        tracking: bool = True,
        min_presence: float = 0.5,
        min_detection: float = 0.5,
        redetect_every: int | None = None,
        color: str = "bgr",
        backend: str = "auto",
        models: str | os.PathLike[str] | None = None,
    ) -> None:
        if color not in ("bgr", "rgb"):
            raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
        if not 0.0 < min_presence < 1.0 or not 0.0 < min_detection < 1.0:
            raise ValueError(f"min_presence and min_detection must lie in (0, 1), got {min_presence}, {min_detection}")
        if redetect_every is not None and (isinstance(redetect_every, bool) or not isinstance(redetect_every, int)
                                           or redetect_every < 1):
            raise ValueError(f"redetect_every must be a positive int or None, got {redetect_every!r}")
        rgb = color == "rgb"
        detector = TfliteModel(model_path("face_detector", models), backend)
        mesh = TfliteModel(model_path("face_landmarks", models), backend)
        self.backend = detector.backend
        self.detector = FaceDetector(detector, rgb, min_detection)
        self.mesh = FaceMesh(mesh, rgb)
        self.tracking = tracking
        self.min_presence = min_presence
        self.redetect_every = redetect_every
        self.detections = 0  # detector runs so far (how often tracking had to re-detect)
        self.reset()

    def reset(self) -> None:
        self._roi: Roi | None = None
        self._since_detect = 0
        self.last_landmarks: np.ndarray | None = None

    def _from_roi(self, frame: np.ndarray, roi: Roi) -> tuple[EyeLocation, ...]:
        points, presence = self.mesh.landmarks(frame, roi)
        if presence < self.min_presence:
            self._roi, self.last_landmarks = None, None
            return ()
        self.last_landmarks = points
        self._roi = roi_from_landmarks(points) if self.tracking else None
        return eyes_from_landmarks(points, presence)

    def locate(self, frame: np.ndarray) -> tuple[EyeLocation, ...]:
        frame = as_frame(frame)
        due = self.redetect_every is not None and self._since_detect >= self.redetect_every
        if self._roi is not None and not due:
            self._since_detect += 1
            eyes = self._from_roi(frame, self._roi)
            if eyes:
                return eyes
        self.detections += 1
        self._since_detect = 0
        self._roi = None
        for face in self.detector.detect(frame)[:MAX_CANDIDATES]:  # best score first; the mesh confirms the face
            eyes = self._from_roi(frame, roi_from_detection(face))
            if eyes:
                return eyes
        return ()
