"""``eyesdk watch`` on small generated videos, and ``eyesdk models fetch-locator``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import synthetic_eye

from eyesdk.cli import main

cv2 = pytest.importorskip("cv2")

FPS = 30.0
REGIONS = "left=20,20,48,48;right=92,20,48,48"
BLINKS = [(1.0, 1.3), (3.0, 3.2)]
MICROSLEEP = (4.5, 6.0)


def write_video(path: Path, seconds: float, closures) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (160, 120))
    rng = np.random.default_rng(0)
    eyes = {state: [synthetic_eye(state, 48, rng) for _ in range(6)] for state in (True, False)}
    for i in range(int(seconds * FPS)):
        t = i / FPS
        is_open = not any(a <= t < b for a, b in closures)
        frame = np.full((120, 160), 130, np.uint8)
        frame[20:68, 20:68] = eyes[is_open][i % 6]
        frame[20:68, 92:140] = eyes[is_open][(i + 3) % 6]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "eyes.mp4", 7.0, [*BLINKS, MICROSLEEP])


# The CLI is under test, not the model: with the shipped model the synthetic closed eyes of these clips sit at
# calibrated logits of only -3 to -4.5, short of the default confirmation depth in the prior's units. So the clips are
# watched with a shallower confirmation, given the way a user gives any setting (--config).
CONFIG = '{"events": {"confirm_depth": 0.3, "core_depth": 0.3}}'


def watch(*args: str):
    return CliRunner().invoke(main, ["watch", "--config", CONFIG, *args], catch_exceptions=False)


def records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_events_alarms_and_the_end_as_json_lines(video: Path) -> None:
    result = watch("--video", str(video), "--locator", "fixed", "--regions", REGIONS, "--json", "--quiet",
                   "--backend", "onnxruntime", "--summary-every", "2")
    assert result.exit_code == 0, result.output
    lines = records(result.output)
    events = [r for r in lines if r["type"] == "event"]
    assert [e["kind"] for e in events] == ["blink", "blink", "microsleep"]
    for event, (a, b) in zip(events, [*BLINKS, MICROSLEEP], strict=True):
        assert event["start"] == pytest.approx(a, abs=0.05) and event["end"] == pytest.approx(b, abs=0.05)
    alarms = [r for r in lines if r["type"] == "alarm"]
    assert [a["kind"] for a in alarms] == ["microsleep"] and alarms[0]["timestamp"] == pytest.approx(5.5, abs=0.05)
    assert len([r for r in lines if r["type"] == "summary"]) == 3
    end = lines[-1]
    assert end["type"] == "end" and end["reason"] == "end of video" and end["frames"] == 210
    assert end["events"] == {"blink": 2, "microsleep": 1}


def test_text_output_and_an_annotated_video(video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "annotated.mp4"
    result = watch("--video", str(video), "--locator", "fixed", "--regions", REGIONS, "--annotate", str(out),
                   "--quiet", "--backend", "onnxruntime")
    assert result.exit_code == 0, result.output
    assert "blink" in result.output and "ALARM microsleep" in result.output
    assert f"annotated video {out}" in result.output
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 210
    capture.release()
    assert sorted(p.name for p in out.parent.iterdir()) == ["annotated.mp4"]  # no temporary file left


def test_sigterm_stops_cleanly(video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler watch installs, called as the signal would (a real SIGTERM: the subprocess test below)."""
    from eyesdk.stream.video import VideoSource

    original = VideoSource.__iter__

    def terminated_midway(self):
        for n, item in enumerate(original(self)):
            if n == 170:  # inside the microsleep, 1.2 s after it began
                handler = signal.getsignal(signal.SIGTERM)
                assert callable(handler)
                handler(signal.SIGTERM, None)
            yield item

    monkeypatch.setattr(VideoSource, "__iter__", terminated_midway)
    result = watch("--video", str(video), "--locator", "fixed", "--regions", REGIONS, "--json", "--quiet",
                   "--backend", "onnxruntime")
    assert result.exit_code == 0, result.output
    lines = records(result.output)
    assert lines[-1]["reason"] == "terminated" and lines[-1]["frames"] == 171
    assert lines[-2]["type"] == "event" and lines[-2]["kind"] == "microsleep" and lines[-2]["clipped"]


def test_a_real_sigterm_to_a_running_watch(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    long_video = write_video(tmp_path / "long.mp4", 600.0, [])  # 100 s ran to its end within the 3 s on a quiet box
    process = subprocess.Popen([sys.executable, "-m", "eyesdk.cli", "watch", "--config", CONFIG, "--video",
                                str(long_video), "--locator", "fixed", "--regions", REGIONS, "--json", "--quiet",
                                "--backend", "onnxruntime"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    end = json.loads(out.strip().splitlines()[-1])
    assert end["type"] == "end" and end["reason"] == "terminated" and 0 < end["frames"] < 18000


def test_the_default_settings_apply_without_config(video: Path, monkeypatch) -> None:
    import eyesdk.stream.stream as stream_module
    from eyesdk.stream import StreamConfig

    made = []

    class Recorded(stream_module.EyeStream):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self.config)

    monkeypatch.setattr(stream_module, "EyeStream", Recorded)
    result = CliRunner().invoke(main, ["watch", "--video", str(video), "--locator", "fixed", "--regions", REGIONS,
                                       "--json", "--quiet", "--backend", "onnxruntime"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert records(result.output)[-1]["frames"] == 210
    assert made == [StreamConfig()]


def test_config_from_a_file_changes_the_events(video: Path, tmp_path: Path) -> None:
    path = tmp_path / "stream.json"
    path.write_text('{"events": {"confirm_depth": 0.3, "core_depth": 0.3, "long_blink_from": 0.1}}')
    result = CliRunner().invoke(main, ["watch", "--config", str(path), "--video", str(video), "--locator", "fixed",
                                       "--regions", REGIONS, "--json", "--quiet", "--backend", "onnxruntime"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    kinds = [r["kind"] for r in records(result.output) if r["type"] == "event"]
    assert kinds == ["long_blink", "long_blink", "microsleep"]  # 0.3 s and 0.2 s closures are long blinks now


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ('{"events": {"bogus": 1}}', r"unexpected keyword argument 'bogus'"),
        ('{"events": {"confirm_depth": 5}}', r"EventConfig.confirm_depth = 5 is out of range"),
        ('{"nope": {}}', r"unknown StreamConfig section\(s\) \['nope'\]"),
        ('{"events": 1}', r"each section is an object of fields"),
        ("{bad", r"the value is not valid JSON"),
        ("/no/such/stream.json", r"/no/such/stream.json .*No such file"),
    ],
)
def test_a_bad_config_is_a_usage_error(video: Path, config: str, match: str) -> None:
    result = CliRunner().invoke(main, ["watch", "--config", config, "--video", str(video)])
    assert result.exit_code == 2
    assert re.search(match, result.output), result.output


def test_ctrl_c_stops_cleanly_with_130(video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk.stream.video import VideoSource

    original = VideoSource.__iter__

    def interrupted(self):
        for n, item in enumerate(original(self)):
            if n == 50:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(VideoSource, "__iter__", interrupted)
    result = CliRunner().invoke(main, ["watch", "--config", CONFIG, "--video", str(video), "--locator", "fixed",
                                       "--regions", REGIONS, "--json", "--quiet", "--backend", "onnxruntime"])
    assert result.exit_code == 130
    assert records(result.output)[-1]["reason"] == "interrupted"


def test_a_camera_that_disappears(monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk.stream import video as video_module

    class Capture:
        def __init__(self, _index):
            self.n = 0

        def isOpened(self):  # noqa: N802 (OpenCV's name)
            return True

        def get(self, _prop):
            return 0.0

        def set(self, *_args):
            return True

        def read(self):
            self.n += 1
            return (self.n <= 20, np.full((120, 160, 3), 120, np.uint8) if self.n <= 20 else None)

        def release(self):
            pass

    monkeypatch.setattr(video_module, "CAMERA_RETRIES", 2)
    monkeypatch.setattr(cv2, "VideoCapture", Capture)
    result = CliRunner().invoke(main, ["watch", "--camera", "0", "--locator", "fixed", "--regions", REGIONS,
                                       "--json", "--backend", "onnxruntime"])
    assert result.exit_code == 1
    end = records(result.output)[-1]
    assert end["reason"] == "video error: camera 0 stopped delivering frames (after 20 frames)"


def test_a_truncated_video_says_so(video: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    result = watch("--video", str(cut), "--locator", "fixed", "--regions", REGIONS, "--json", "--quiet",
                   "--backend", "onnxruntime")
    if result.exit_code == 1:  # the container index was cut away: OpenCV cannot open it at all
        assert "cannot open video" in result.output
        return
    end = records(result.output)[-1]
    assert end["frames"] < 210


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ([], r"give exactly one of --video FILE or --camera N"),
        (["--video", "a.mp4", "--camera", "0"], r"give exactly one of --video FILE or --camera N"),
        (["--video", "a.mp4", "--locator", "fixed"], r"--locator fixed needs --regions"),
        (["--video", "a.mp4", "--regions", "left=1,2,3"], r"expected e.g. 'left=100,80,60,60;right=220,80,60,60'"),
        (["--video", "a.mp4", "--regions", ";"], r"no region given"),
    ],
)
def test_usage_errors(args, match) -> None:
    import re

    result = CliRunner().invoke(main, ["watch", *args])
    assert result.exit_code == 2 and re.search(match, result.output)


def test_an_annotation_opencv_cannot_write(video: Path, tmp_path: Path) -> None:
    result = watch("--video", str(video), "--locator", "fixed", "--regions", REGIONS, "--json", "--quiet",
                   "--backend", "onnxruntime", "--annotate", str(tmp_path / "out.nope"))
    assert result.exit_code == 1
    end = records(result.output)[-1]
    assert end["reason"].startswith("video error: OpenCV cannot write an mp4 video to")
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["watch", "--video", str(tmp_path / "none.mp4"), "--locator", "fixed",
                                       "--regions", REGIONS, "--backend", "onnxruntime"])
    assert result.exit_code == 1 and "does not exist or is not a file" in result.output
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    result = CliRunner().invoke(main, ["watch", "--video", str(junk), "--locator", "fixed", "--regions", REGIONS,
                                       "--backend", "onnxruntime"])
    assert result.exit_code == 1 and "VideoSourceError: cannot open video" in result.output


def test_watch_with_the_landmark_locator_on_a_real_face(tmp_path: Path, private_cache: Path) -> None:
    from face_paths import astronaut_frame, locator_models_or_skip

    models = locator_models_or_skip()
    target = private_cache / "locator" / "mediapipe-0.10.21"
    shutil.copytree(models, target)
    frame = astronaut_frame()
    path = tmp_path / "face.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (frame.shape[1], frame.shape[0]))
    for _ in range(30):
        writer.write(frame)
    writer.release()
    result = watch("--video", str(path), "--json", "--quiet", "--backend", "onnxruntime")
    assert result.exit_code == 0, result.output
    end = records(result.output)[-1]
    assert end["frames"] == 30 and end["summary"]["state"] == "open" and end["events"] == {}


def test_fetch_locator_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk.locators import models

    calls = {}

    def fake_fetch(keys, wheel=None, root=None, force=False):
        calls.update(keys=keys, wheel=wheel, root=root, force=force)
        return {k: tmp_path / models.MODEL_FILES[k].filename for k in keys}

    monkeypatch.setattr(models, "fetch", fake_fetch)
    result = CliRunner().invoke(main, ["models", "fetch-locator", "--dir", str(tmp_path), "--iris"])
    assert result.exit_code == 0, result.output
    assert calls["keys"] == ("face_detector", "face_landmarks", "iris_landmarks") and calls["root"] == tmp_path
    assert "face_landmarks:" in result.output and "sha256 1055cb9d4a9ca8b8" in result.output

    def offline(*_args, **_kwargs):
        raise models.LocatorFetchError("pip could not download the wheel")

    monkeypatch.setattr(models, "fetch", offline)
    result = CliRunner().invoke(main, ["models", "fetch-locator"])
    assert result.exit_code == 1 and "LocatorFetchError: pip could not download the wheel" in result.output
