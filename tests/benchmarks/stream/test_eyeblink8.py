"""The Eyeblink8 / Talking Face evaluator on a tiny synthetic tree in that layout (.avi + .tag)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import synthetic_eye

from eyesdk.benchmarks.stream.eyeblink8 import TagFileError, read_tag, run, videos

cv2 = pytest.importorskip("cv2")
FPS = 30.0


def write_tag(path: Path, frames: int, blinks: list[tuple[int, int]]) -> None:
    lines = ["#This is a synthetic annotation", "#start"]
    for f in range(frames):
        blink = next((k + 1 for k, (a, b) in enumerate(blinks) if a <= f <= b), -1)
        closed = "C" if blink > 0 else "X"
        lines.append(f"{f}:{blink}:X:{closed}:X:{closed}:X:10:10:100:100:1:1:2:2:3:3:4:4")
    lines.append("#end")
    path.write_text("\n".join(lines) + "\n")


def write_avi(path: Path, frames: int, blinks: list[tuple[int, int]]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (160, 120))
    rng = np.random.default_rng(2)
    eyes = {state: [synthetic_eye(state, 48, rng) for _ in range(4)] for state in (True, False)}
    for f in range(frames):
        is_open = not any(a <= f <= b for a, b in blinks)
        frame = np.full((120, 160), 130, np.uint8)
        frame[20:68, 20:68] = eyes[is_open][f % 4]
        frame[20:68, 92:140] = eyes[is_open][(f + 1) % 4]
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eyeblink8")
    for subject, blinks in (("1", [(30, 38), (90, 96)]), ("2", [(40, 49)])):
        folder = root / subject
        folder.mkdir()
        write_avi(folder / "clip.avi", 150, blinks)
        write_tag(folder / "clip.tag", 150, blinks)
    (root / "2" / "untagged.avi").write_bytes(b"")  # no .tag beside it: not evaluated
    return root


def test_read_tag_finds_the_blinks(tree: Path) -> None:
    blinks = read_tag(tree / "1" / "clip.tag")
    assert [(b.blink_id, b.first_frame, b.last_frame) for b in blinks] == [(1, 30, 38), (2, 90, 96)]
    assert [v.parent.name for v, _ in videos(tree)] == ["1", "2"]


def test_the_evaluator_scores_a_stream(tree: Path) -> None:
    import eyesdk
    from eyesdk.locators import FixedRegionLocator
    from eyesdk.stream import StreamConfig
    from eyesdk.stream.events import EventConfig

    locator = FixedRegionLocator({"left": (20, 20, 48, 48), "right": (92, 20, 48, 48)})
    # The evaluator is under test, not the model: after MJPG the synthetic closed eyes sit at calibrated logits of
    # only -2.6 to -4.5 with the default model, short of the default confirmation depth in the prior's units.
    config = StreamConfig(events=EventConfig(confirm_depth=0.3, core_depth=0.3))
    stream = eyesdk.EyeStream(locator=locator, backend="onnxruntime", config=config)
    result = run(stream, tree)
    assert len(result["videos"]) == 2
    assert result["pooled"]["truth"] == 3 and result["pooled"]["f1"] == 1.0


@pytest.mark.parametrize(
    ("text", "match"),
    [("#nothing here\n", r"no '#start' line"), ("#start\n12:x:X\n#end\n", r":2: expected 'frame_id : blink_id")],
)
def test_bad_tag_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.tag"
    path.write_text(text)
    with pytest.raises(TagFileError, match=match):
        read_tag(path)


def test_no_videos_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no .avi with a .tag beside it"):
        run(None, tmp_path)
