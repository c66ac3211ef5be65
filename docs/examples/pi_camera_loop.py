"""Blinks, PERCLOS and drowsiness alarms from a live camera on a Raspberry Pi, with ``eyesdk.EyeStream``.

    python pi_camera_loop.py                  # USB webcam (/dev/video0) through OpenCV's V4L2 capture
    python pi_camera_loop.py --picamera2      # Raspberry Pi camera module through Picamera2 (libcamera)
    python pi_camera_loop.py --video clip.mp4 # a recorded clip, to try it without a camera
    python pi_camera_loop.py --show           # with a preview window (needs a desktop session)

Needs ``pip install 'eyesdk[tflite,stream]'`` and, once, ``eyesdk models fetch-locator`` (the landmark locator's model
files; without them ``--locator auto`` falls back to OpenCV's Haar face cascade). ``--picamera2`` needs
``sudo apt install python3-picamera2`` and a venv created with ``--system-site-packages`` (see docs/raspberry-pi.md).

Everything between the frame and the event is ``EyeStream`` (docs/stream.md): eyes found by the locator, crops cut
by the crop recipe, the quality gate, the classifier on both eyes, the person's own open/closed levels, hysteresis,
the closure state machine, PERCLOS. This loop only supplies frames with their capture times and prints what comes
back: each completed event, each alarm when raised ("microsleep" at 1 s of closed eyes, "sleep" at 3 s, "drowsy"
from PERCLOS), and a summary every ``--report-every`` seconds. SIGTERM (``systemctl stop``) and Ctrl-C stop it
cleanly and exit 0; a camera that cannot be opened or stops delivering exits 1 (systemd's Restart=on-failure).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator

import numpy as np

import eyesdk
from eyesdk.stream.video import VideoSource


class Stop(Exception):
    pass


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def picamera2_frames(width: int, height: int) -> Iterator[tuple[float, np.ndarray]]:
    from picamera2 import Picamera2  # apt install python3-picamera2 (not on PyPI for the Pi's libcamera build)

    camera = Picamera2()
    # Picamera2's "RGB888" is stored [B, G, R] per pixel (libcamera/DRM naming): exactly OpenCV's BGR order.
    camera.configure(camera.create_video_configuration(main={"size": (width, height), "format": "RGB888"}))
    camera.start()
    try:
        while True:
            frame = camera.capture_array("main")
            yield time.monotonic(), frame  # the capture time is the stream's clock
    finally:
        camera.stop()
        camera.close()


def draw(frame: np.ndarray, update) -> None:
    import cv2

    colours = {"open": (0, 200, 0), "closed": (0, 0, 255), "unknown": (160, 160, 160)}
    for eye in update.eyes:
        if eye.box is not None:
            x, y, w, h = eye.box
            cv2.rectangle(frame, (x, y), (x + w, y + h), colours[eye.state], 2)
    text = update.state + ("" if update.perclos is None else f"  PERCLOS {100 * update.perclos:.0f}%")
    cv2.putText(frame, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colours[update.state], 2)


def run(args: argparse.Namespace) -> int:
    stream = eyesdk.EyeStream(locator=args.locator, model=args.model, backend=args.backend)
    es = stream.classifier.eye_state
    print(f"eyesdk {eyesdk.__version__}: {es.backend} {es.precision}, locator {stream.locator.name}", flush=True)
    if args.picamera2:
        frames: Iterator[tuple[float, np.ndarray]] = picamera2_frames(args.width, args.height)
    elif args.video:
        frames = iter(VideoSource.file(args.video))
    else:
        frames = iter(VideoSource.camera(args.camera, args.width, args.height))
    count, busy, window_start = 0, 0.0, None
    update = None
    try:
        for total, (t, frame) in enumerate(frames, start=1):
            start = time.perf_counter()
            update = stream.update(frame, t)
            busy += time.perf_counter() - start
            count += 1
            window_start = t if window_start is None else window_start
            for event in update.events:
                print(f"{t:10.2f} {event.kind} {event.duration:.2f} s" + (f" ({event.side})" if event.side else ""),
                      flush=True)
            for alarm in update.alarms:
                if alarm.new:
                    print(f"{t:10.2f} ALERT {alarm.kind}", flush=True)
            if t - window_start >= args.report_every:
                perclos = "-" if update.perclos is None else f"{100 * update.perclos:.1f} %"
                print(f"{t:10.2f} {count / (t - window_start):.1f} fps, {1000 * busy / count:.1f} ms per frame in "
                      f"eyesdk, state {update.state}, PERCLOS {perclos}", flush=True)
                count, busy, window_start = 0, 0.0, t
            if args.show:
                import cv2

                draw(frame, update)
                cv2.imshow("eyesdk", frame)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            if args.max_frames and total >= args.max_frames:
                break
    finally:
        for event in stream.close():
            print(f"{event.start:10.2f} {event.kind} {event.duration:.2f} s (still going at the end)", flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="OpenCV camera index (default 0: /dev/video0)")
    source.add_argument("--picamera2", action="store_true", help="use the Pi camera module through Picamera2")
    source.add_argument("--video", help="read frames from a video file instead of a camera")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--locator", default="auto", choices=["auto", "mediapipe", "haar"])
    parser.add_argument("--model", default=None, help="bundle directory (default: the one inside eyesdk)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between summary lines")
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
    except (OSError, ValueError, ImportError, eyesdk.EyeSDKError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1  # non-zero: systemd's Restart=on-failure brings it back (camera unplugged, busy, ...)


if __name__ == "__main__":
    sys.exit(main())
