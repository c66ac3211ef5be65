"""Evaluator for blink videos in the Eyeblink8 / Talking Face layout: ``.avi`` files with a ``.tag`` of the same name.

A ``.tag`` file (the annotation format of those datasets) has header lines, then one line per frame between ``#start``
and ``#end``: ``frame_id : blink_id : ...`` with blink_id -1 outside blinks and the blink's number inside it (the
other fields, eye closed / not visible flags and eye corners, are not needed here). A blink is a run of frames with
the same positive blink id; it spans from its first frame to the frame after its last. Every closure the stream
reports is matched one to one against them at temporal IoU >= 0.5 (``scoring.match``). The datasets are not
fetchable here; this runs on whatever copy a user has, e.g.::

    eyesdk-bench stream eyeblink8 --root ~/data/eyeblink8 --json eyeblink8.json
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scoring import match, prf

CLOSURES = ("blink", "long_blink", "microsleep", "sleep")


class TagFileError(ValueError):
    """A .tag file that does not follow the Eyeblink8 layout (says which line)."""


@dataclass(frozen=True)
class TaggedBlink:
    blink_id: int
    first_frame: int
    last_frame: int


def read_tag(path: Path) -> list[TaggedBlink]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "#start")
    except StopIteration:
        raise TagFileError(f"{path}: no '#start' line; not an Eyeblink8 .tag file") from None
    blinks: list[TaggedBlink] = []
    current: list[int] | None = None  # [blink id, first, last]
    for number, line in enumerate(lines[start + 1:], start=start + 2):
        text = line.strip()
        if text == "#end":
            break
        if not text:
            continue
        fields = text.split(":")
        try:
            frame, blink = int(fields[0]), int(fields[1])
        except (IndexError, ValueError):
            raise TagFileError(f"{path}:{number}: expected 'frame_id : blink_id : ...', got {text[:60]!r}") from None
        if current is not None and (blink != current[0] or frame != current[2] + 1):
            blinks.append(TaggedBlink(*current))
            current = None
        if blink > 0:
            current = [blink, frame, frame] if current is None else [current[0], current[1], frame]
    if current is not None:
        blinks.append(TaggedBlink(*current))
    return blinks


def videos(root: Path) -> list[tuple[Path, Path]]:
    """Every ``.avi`` under root with a ``.tag`` beside it, sorted."""
    return sorted((avi, avi.with_suffix(".tag")) for avi in root.rglob("*.avi") if avi.with_suffix(".tag").is_file())


def evaluate_video(stream: Any, video: Path, tag: Path) -> dict[str, Any]:
    from eyesdk.stream.video import VideoSource

    stream.reset()
    truth_blinks = read_tag(tag)
    times: list[float] = []
    found = []
    unknown = 0
    with VideoSource.file(video) as source:
        fps = source.fps
        for t, frame in source:
            times.append(t)
            update = stream.update(frame, t)
            unknown += update.state == "unknown"
            found += [e for e in update.events if e.kind in CLOSURES]
    found += [e for e in stream.close() if e.kind in CLOSURES]

    def time_of(frame: int) -> float:  # tag frame ids count from 1 or 0 depending on the file: clamp
        if not times:
            return frame / fps
        index = min(max(frame, 0), len(times) - 1)
        return times[index] + (frame - index) / fps

    truth = [(time_of(b.first_frame), time_of(b.last_frame + 1)) for b in truth_blinks]
    pairs = match(truth, [(e.start, e.end) for e in found])
    return {"video": str(video), "frames": len(times), "unknown_fraction": unknown / max(len(times), 1),
            **prf(len(pairs), len(truth), len(found))}


def run(stream: Any, root: Path, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    pairs = videos(root)
    if not pairs:
        raise FileNotFoundError(f"no .avi with a .tag beside it under {root} (the Eyeblink8 / Talking Face layout)")
    results = []
    for video, tag in pairs:
        results.append(evaluate_video(stream, video, tag))
        if progress:
            r = results[-1]
            progress(f"{video.name}: F1 {r['f1']:.3f} ({r['tp']}/{r['truth']} blinks, {r['found']} found)")
    pooled = prf(sum(r["tp"] for r in results), sum(r["truth"] for r in results), sum(r["found"] for r in results))
    return {"root": str(root), "videos": results, "pooled": pooled}
