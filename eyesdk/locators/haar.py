"""The fallback locator that needs no download: OpenCV's frontal-face Haar cascade, eyes placed by face geometry.

Only the face is detected; the eyes are put where they sit in a frontal-face box (``FACE_GEOMETRY``, measured against
the landmark locator's eye corners, ``eyesdk-bench locators``). OpenCV's eye cascade is not used: it finds open eyes
far more often than closed ones, which would make closed eyes disappear instead of being classified. Needs
``opencv-python-headless<5`` (the ``stream`` extra); OpenCV 5 ships no cascades. No roll is measured: crops are
upright. The face is searched in a copy of the frame reduced to at most ``search_side`` pixels (speed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError
from ..stream.video import INSTALL, opencv
from .base import LEFT, RIGHT, EyeLocation, as_frame
from .errors import LocatorModelMissingError

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FaceGeometry:
    """Eye centres and width as fractions of the cascade's face box (x from its left, y from its top)."""

    left_x: float = 0.311  # medians over 99 faces (92 LFW, 7 astronaut frames): eyesdk-bench stream locators
    right_x: float = 0.697
    eye_y: float = 0.392
    eye_width: float = 0.174


FACE_GEOMETRY = FaceGeometry()


def _cv2():
    cv2 = opencv("the Haar locator needs")
    if not hasattr(cv2, "CascadeClassifier"):
        raise BackendUnavailableError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them); "
                                      f"{INSTALL}")
    return cv2


def cascade_path() -> Path:
    """The frontal-face cascade inside the OpenCV wheel (cv2.data), or Debian's opencv-data package."""
    cv2 = _cv2()
    candidates = [Path(cv2.data.haarcascades)] if hasattr(cv2, "data") else []
    candidates += [Path("/usr/share/opencv4/haarcascades"), Path("/usr/share/opencv/haarcascades")]
    for folder in candidates:
        if (folder / CASCADE).is_file():
            return folder / CASCADE
    raise LocatorModelMissingError(f"no {CASCADE} in {', '.join(map(str, candidates))}; {INSTALL}")


class HaarLocator:
    name = "haar"

    def __init__(self, min_face: int = 60, search_side: int = 320, color: str = "bgr",
                 geometry: FaceGeometry = FACE_GEOMETRY) -> None:
        if color not in ("bgr", "rgb"):
            raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
        if min_face < 20 or search_side < 64:
            raise ValueError(f"min_face must be >= 20 and search_side >= 64, got {min_face}, {search_side}")
        cv2 = _cv2()
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(cascade_path()))
        if self._cascade.empty():
            raise LocatorModelMissingError(f"OpenCV could not load {cascade_path()}; {INSTALL}")
        self._code = cv2.COLOR_BGR2GRAY if color == "bgr" else cv2.COLOR_RGB2GRAY
        self.min_face = min_face
        self.search_side = search_side
        self.geometry = geometry

    def reset(self) -> None:
        """Nothing is carried between frames."""

    def faces(self, frame: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x, y, w, h) in frame pixels, largest first."""
        cv2 = self._cv2
        frame = as_frame(frame)
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, self._code)
        h, w = grey.shape
        scale = min(1.0, self.search_side / max(h, w))
        small = grey if scale == 1.0 else cv2.resize(grey, (round(w * scale), round(h * scale)),
                                                     interpolation=cv2.INTER_AREA)
        min_side = max(20, round(self.min_face * scale))
        found = self._cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        boxes = [tuple(float(v) / scale for v in box) for box in found]
        return sorted(boxes, key=lambda b: -b[2] * b[3])

    def locate(self, frame: np.ndarray) -> tuple[EyeLocation, ...]:
        faces = self.faces(frame)
        if not faces:
            return ()
        x, y, w, h = faces[0]
        g = self.geometry
        cy = y + g.eye_y * h
        return (
            EyeLocation(LEFT, (x + g.left_x * w, cy), g.eye_width * w, 0.0, 1.0, "face-geometry"),
            EyeLocation(RIGHT, (x + g.right_x * w, cy), g.eye_width * w, 0.0, 1.0, "face-geometry"),
        )
