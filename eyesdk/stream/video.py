"""Video and camera frames with timestamps, and the annotated video writer: OpenCV (the ``stream`` extra).

A file's timestamps are the container's presentation times (``CAP_PROP_POS_MSEC``), so variable-frame-rate files keep
their real timing; when a container gives none, or one that does not increase, the frame is timed one nominal frame
after the previous one (and counted in ``retimed``). A camera's frames are timed with the monotonic clock when they
arrive: this is the only place in the stream layer that reads a clock, the source of the timestamps the stream is
given. A camera that stops delivering is retried briefly, then raises ``VideoSourceError``; a file that ends early
or is corrupt part-way simply ends (``frames`` < ``frame_count`` says so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..atomic import replace_with, temp_beside
from ..errors import BackendUnavailableError
from .errors import VideoSourceError

INSTALL = "pip install 'eyesdk[stream]'  (opencv-python-headless<5)"
CAMERA_RETRIES = 10


def opencv(needed_by: str = "video and camera input need"):
    """OpenCV (the ``stream`` extra), or BackendUnavailableError saying who needs it and the install line."""
    try:
        import cv2
    except ImportError as exc:
        raise BackendUnavailableError(f"{needed_by} OpenCV ({exc}); {INSTALL}") from exc
    return cv2



class VideoSource:
    """``for t, frame in VideoSource.file(path)`` (or ``.camera(index)``): BGR uint8 frames with timestamps."""

    def __init__(self, capture, name: str, live: bool) -> None:
        cv2 = opencv()
        self._cv2 = cv2
        self._capture = capture
        self.name = name
        self.live = live
        if not capture.isOpened():
            capture.release()
            raise VideoSourceError(f"cannot open {name}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 1.0 <= fps <= 1000.0 else 30.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 and not live else None
        self.frames = 0
        self.retimed = 0

    @classmethod
    def file(cls, path: str | os.PathLike[str]) -> VideoSource:
        path = Path(path)
        if not path.is_file():
            raise VideoSourceError(f"video file {path} does not exist or is not a file")
        cv2 = opencv()
        return cls(cv2.VideoCapture(str(path)), f"video {path}", live=False)

    @classmethod
    def camera(cls, index: int, width: int | None = None, height: int | None = None) -> VideoSource:
        cv2 = opencv()
        capture = cv2.VideoCapture(int(index))
        source = cls(capture, f"camera {index}", live=True)
        if width and height:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        return source

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        cv2 = self._cv2
        last = None
        failures = 0
        while True:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                if not self.live:
                    return
                failures += 1
                if failures > CAMERA_RETRIES:
                    raise VideoSourceError(f"{self.name} stopped delivering frames (after {self.frames} frames)")
                time.sleep(0.05)
                continue
            failures = 0
            t = time.monotonic() if self.live else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if last is not None and not t > last:
                t = last + 1.0 / self.fps
                self.retimed += 1
            last = t
            self.frames += 1
            yield t, frame

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


COLORS = {"open": (60, 200, 60), "closed": (40, 40, 230), "unknown": (150, 150, 150)}


class AnnotatedWriter:
    """An mp4 of the frames with eye boxes, states and the running numbers drawn on. Written to a temporary file
    next to the target and renamed over it when closed, so the target is never half a video."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self._cv2 = opencv()
        self.path = Path(path)
        self._tmp = temp_beside(self.path, self.path.suffix or ".mp4")  # OpenCV picks the container from the suffix
        self.fps = fps
        self._writer = None
        self.frames = 0

    def write(self, frame: np.ndarray, update) -> None:
        cv2 = self._cv2
        image = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        image = np.ascontiguousarray(image).copy()
        if self._writer is None:
            h, w = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise VideoSourceError(f"OpenCV cannot write an mp4 video to {self._tmp}")
        for eye in update.eyes:
            if eye.box is not None:
                x, y, bw, bh = eye.box
                cv2.rectangle(image, (x, y), (x + bw, y + bh), COLORS[eye.state], 2)
        perclos = "-" if update.perclos is None else f"{100 * update.perclos:.1f}%"
        text = f"{update.timestamp:7.2f}s  {update.state:<7}  PERCLOS {perclos}"
        cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, COLORS[update.state], 2)
        for i, alarm in enumerate(update.alarms):
            cv2.putText(image, alarm.kind.upper(), (10, 52 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
        self._writer.write(image)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; None (and nothing left behind) when no frame was written."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        return replace_with(self._tmp, self.path)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)
