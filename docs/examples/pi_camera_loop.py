"""Eye open/closed from a live camera on a Raspberry Pi: OpenCV finds the face and eyes, eyesdk classifies each eye.

    python pi_camera_loop.py                  # USB webcam (/dev/video0) through OpenCV's V4L2 capture
    python pi_camera_loop.py --picamera2      # Raspberry Pi camera module through Picamera2 (libcamera)
    python pi_camera_loop.py --video clip.mp4 # a recorded clip, to try the pipeline without a camera
    python pi_camera_loop.py --show           # with a preview window (needs a desktop session)

Needs ``pip install 'eyesdk[tflite]' 'opencv-python-headless<5'`` (``opencv-python<5`` for ``--show``; OpenCV 5 has
no Haar cascades). ``--picamera2`` needs ``sudo apt install python3-picamera2 python3-opencv opencv-data`` and a venv
created with ``--system-site-packages`` to see them (see docs/raspberry-pi.md).

Eyes are found inside a detected face (Haar cascades shipped with OpenCV). ``haarcascade_eye.xml`` finds open eyes
far more reliably than closed ones, so an eye the cascade misses is cropped from where it sits in the face box
instead; otherwise a closed eye would simply never be classified. One line is printed when the state of the eyes
changes, a summary every ``--report-every`` seconds, and ``ALERT`` when both eyes stay closed for ``--alert-after``
seconds. SIGTERM (``systemctl stop``) and Ctrl-C stop it cleanly, releasing the camera.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

import eyesdk

Box = tuple[int, int, int, int]  # x, y, width, height in frame pixels


@dataclass
class Eye:
    side: str  # "left" / "right" in the image (the person's right eye is on the image's left)
    box: Box
    found_by: str  # "cascade" or "face-geometry"
    label: str = ""
    prob_open: float = float("nan")


class EyeFinder:
    """Faces with the frontal-face cascade, then one eye per half of the upper face."""

    def __init__(self, min_face: int = 80) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them): "
                               "pip install 'opencv-python-headless<5'")
        root = cascade_dir()
        self.faces = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        self.eyes = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml"))
        if self.faces.empty() or self.eyes.empty():
            raise RuntimeError(f"OpenCV's Haar cascades could not be loaded from {root}")
        self.min_face = min_face

    def largest_face(self, grey: np.ndarray) -> Box | None:
        faces = self.faces.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                            minSize=(self.min_face, self.min_face))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        return int(x), int(y), int(w), int(h)

    def eyes_in(self, grey: np.ndarray, face: Box) -> list[Eye]:
        """Left and right eye of one face: the cascade's box when it finds one, else the face-geometry box."""
        fx, fy, fw, fh = face
        upper = grey[fy: fy + fh // 2, fx: fx + fw]
        found = self.eyes.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=6, minSize=(fw // 8, fw // 8))
        eyes = []
        for side, lo, hi in (("left", 0, fw // 2), ("right", fw // 2, fw)):
            inside = [e for e in found if lo <= e[0] + e[2] // 2 < hi]
            if inside:
                x, y, w, h = max(inside, key=lambda e: e[2] * e[3])
                eyes.append(Eye(side, square_box(fx + x + w // 2, fy + y + h // 2, int(1.3 * max(w, h))), "cascade"))
            else:  # typical eye centre in a frontal-face box: 30 % / 70 % across, 38 % down, ~28 % of the width
                cx = fx + (3 * fw) // 10 if side == "left" else fx + (7 * fw) // 10
                eyes.append(Eye(side, square_box(cx, fy + (38 * fh) // 100, (28 * fw) // 100), "face-geometry"))
        return eyes


def cascade_dir() -> Path:
    """Where the Haar cascade files are: inside the pip wheel (cv2.data), or Debian's opencv-data package."""
    candidates = [Path(cv2.data.haarcascades)] if hasattr(cv2, "data") else []
    candidates += [Path("/usr/share/opencv4/haarcascades"), Path("/usr/share/opencv/haarcascades")]
    for path in candidates:
        if (path / "haarcascade_eye.xml").is_file():
            return path
    raise RuntimeError("no haarcascade_eye.xml found (looked in " + ", ".join(map(str, candidates)) + "); "
                       "pip install 'opencv-python-headless<5', or sudo apt install opencv-data")


def square_box(cx: int, cy: int, size: int) -> Box:
    return cx - size // 2, cy - size // 2, size, size


def crop(frame: np.ndarray, box: Box) -> np.ndarray | None:
    """The box cut out of the frame, or None when it sticks out of the frame (eyesdk refuses tiny crops anyway)."""
    x, y, w, h = box
    if x < 0 or y < 0 or x + w > frame.shape[1] or y + h > frame.shape[0] or w < 8 or h < 8:
        return None
    return frame[y: y + h, x: x + w]


def classify(es: eyesdk.EyeState, frame: np.ndarray, eyes: list[Eye]) -> list[Eye]:
    """Fill in label and P(open) of every eye whose crop lies inside the frame, in one batch call."""
    kept = [(eye, c) for eye in eyes if (c := crop(frame, eye.box)) is not None]
    if kept:
        for (eye, _), result in zip(kept, es.predict_batch([c for _, c in kept]), strict=True):
            eye.label, eye.prob_open = result.label, result.prob_open
    return [eye for eye, _ in kept]


# ------------------------------------------------------------------------------------------------ frame sources


def opencv_frames(source: int | str, width: int, height: int) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise RuntimeError(f"cannot open video source {source!r}")
    if isinstance(source, int):
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                if isinstance(source, int):  # a camera that stops delivering is a failure: systemd restarts us
                    raise RuntimeError(f"camera {source} stopped delivering frames")
                return  # the end of a clip
            yield frame  # BGR, as OpenCV and eyesdk's default color="bgr" expect
    finally:
        capture.release()


def picamera2_frames(width: int, height: int) -> Iterator[np.ndarray]:
    from picamera2 import Picamera2  # apt install python3-picamera2 (not on PyPI for the Pi's libcamera build)

    camera = Picamera2()
    # Picamera2's "RGB888" is stored [B, G, R] per pixel (libcamera/DRM naming): exactly OpenCV's BGR order.
    camera.configure(camera.create_video_configuration(main={"size": (width, height), "format": "RGB888"}))
    camera.start()
    try:
        while True:
            yield camera.capture_array("main")
    finally:
        camera.stop()
        camera.close()


# ------------------------------------------------------------------------------------------------ main loop


class Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def state_of(eyes: list[Eye]) -> str:
    if not eyes:
        return "no eyes"
    return " ".join(f"{e.side}={e.label}" for e in eyes)


def run(args: argparse.Namespace) -> int:
    es = eyesdk.EyeState(model=args.model, backend=args.backend, precision=args.precision, threads=args.threads)
    print(f"eyesdk {eyesdk.__version__}: {es.backend} {es.precision}, bundle {es.bundle.name}", flush=True)
    finder = EyeFinder(args.min_face)
    if args.picamera2:
        frames = picamera2_frames(args.width, args.height)
    else:
        frames = opencv_frames(args.video if args.video else args.camera, args.width, args.height)

    last_state, closed_since, alerted = "", None, False
    count, busy, window_start = 0, 0.0, time.monotonic()
    for total, frame in enumerate(frames, start=1):
        start = time.perf_counter()
        grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        face = finder.largest_face(grey)
        eyes = classify(es, frame, finder.eyes_in(grey, face)) if face else []
        busy += time.perf_counter() - start
        count += 1

        now = time.monotonic()
        state = state_of(eyes)
        if state != last_state:
            probs = " ".join(f"{e.side}:{e.prob_open:.2f}({e.found_by})" for e in eyes)
            print(f"{time.strftime('%H:%M:%S')} {state}" + (f"  P(open) {probs}" if eyes else ""), flush=True)
            last_state = state
        both_closed = len(eyes) == 2 and all(e.label == "closed" for e in eyes)
        closed_since = (closed_since or now) if both_closed else None
        if closed_since is not None and now - closed_since >= args.alert_after and not alerted:
            print(f"{time.strftime('%H:%M:%S')} ALERT: both eyes closed for {now - closed_since:.1f} s", flush=True)
            alerted = True
        alerted = alerted and closed_since is not None
        if now - window_start >= args.report_every:
            print(f"{time.strftime('%H:%M:%S')} {count / (now - window_start):.1f} fps, "
                  f"{1000 * busy / count:.1f} ms per frame in detection + eyesdk", flush=True)
            count, busy, window_start = 0, 0.0, now

        if args.show:
            draw(frame, face, eyes)
            cv2.imshow("eyesdk", frame)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                break
        if args.max_frames and total >= args.max_frames:
            break
    return 0


def draw(frame: np.ndarray, face: Box | None, eyes: list[Eye]) -> None:
    if face:
        x, y, w, h = face
        cv2.rectangle(frame, (x, y), (x + w, y + h), (255, 160, 0), 2)
    for eye in eyes:
        x, y, w, h = eye.box
        colour = (0, 200, 0) if eye.label == "open" else (0, 0, 255)
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        cv2.putText(frame, f"{eye.label} {eye.prob_open:.2f}", (x, y - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="OpenCV camera index (default 0: /dev/video0)")
    source.add_argument("--picamera2", action="store_true", help="use the Pi camera module through Picamera2")
    source.add_argument("--video", help="read frames from a video file instead of a camera")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model", default=None, help="bundle directory (default: the one inside eyesdk)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-face", type=int, default=80, help="smallest face in pixels")
    parser.add_argument("--alert-after", type=float, default=1.5, help="seconds of both eyes closed before ALERT")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between fps lines")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: never)")
    parser.add_argument("--show", action="store_true", help="preview window with boxes; q quits")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        return run(args)
    except (Stop, KeyboardInterrupt):
        print("stopped", flush=True)
        return 0
    except (RuntimeError, OSError, ValueError, eyesdk.EyeSDKError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1  # non-zero: systemd's Restart=on-failure brings it back (camera unplugged, busy, ...)


if __name__ == "__main__":
    sys.exit(main())
