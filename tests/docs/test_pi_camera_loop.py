"""The camera-loop example runs on a recorded clip of a real face and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from face_paths import astronaut_frame

cv2 = pytest.importorskip("cv2")
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "pi_camera_loop.py"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frame = astronaut_frame()
    path = tmp_path_factory.mktemp("clip") / "face.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for i in range(60):
        writer.write(np.roll(frame, i % 5, axis=1))
    writer.release()
    return path


def test_the_example_runs_on_a_clip(clip: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE), "--video", str(clip), "--locator", "haar",
                           "--backend", "onnxruntime", "--report-every", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "locator haar" in done.stdout and "state open" in done.stdout


def test_the_example_stops_cleanly_on_sigterm(tmp_path: Path, clip: Path) -> None:
    long_clip = tmp_path / "long.mp4"
    capture = cv2.VideoCapture(str(clip))
    ok, frame = capture.read()
    capture.release()
    writer = cv2.VideoWriter(str(long_clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for _ in range(600):
        writer.write(frame)
    writer.release()
    process = subprocess.Popen([sys.executable, str(EXAMPLE), "--video", str(long_clip), "--locator", "haar",
                                "--backend", "onnxruntime"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.readline()  # the first line: running
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and out.strip().endswith("stopped")


def test_a_missing_clip_exits_1(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE), "--video", str(tmp_path / "none.mp4"), "--locator", "haar",
                           "--backend", "onnxruntime"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "does not exist" in done.stderr
