"""End-to-end stream speed at 640 x 480, and memory over a long synthetic stream.

Speed: whole ``EyeStream.update`` calls (locate + 2 crops + gate + classify both eyes in one batch + adaptation +
filters + state machine + window) on camera-sized frames of a real face, timed with ``eyesdk.timing.interleaved_us``
(every contestant in every round, so machine load hits them alike; compare ratios from one run). Contestants: the
landmark locator tracking (re-detects only when the mesh loses the face), the same detecting every frame, the Haar
fallback, and crops without a locator; each with its own frames (the face shifted by a few pixels frame to frame,
so tracking has to follow it) and its own clock. Everything on one thread.

Memory: an hour of 30 fps stream time through ``EyeStream(locator=None)`` (synthetic crops, scripted blinks, drowsy
spells), with the resident set size and Python's traced allocations sampled along the way: flat means the stream
keeps nothing per frame.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def shifted_frames(frame: np.ndarray, n: int = 16, amplitude: int = 6) -> list[np.ndarray]:
    """The frame moved by a few pixels back and forth (a head that is not perfectly still)."""
    shifts = np.round(amplitude * np.sin(np.linspace(0, 2 * np.pi, n, endpoint=False))).astype(int)
    return [np.ascontiguousarray(np.roll(frame, (int(s) // 2, int(s)), axis=(0, 1))) for s in shifts]


class _Clocked:
    """One contestant: a stream, its frames and its own timestamps (33 ms apart)."""

    def __init__(self, stream: Any, frames: list[Any]) -> None:
        self.stream, self.frames, self.i = stream, frames, 0

    def __call__(self) -> None:
        i = self.i
        self.i += 1
        self.stream.update(self.frames[i % len(self.frames)], i / 30.0)


def run_speed(eye_state: Any, frame: np.ndarray, crops: tuple[np.ndarray, np.ndarray], calls: int,
              models: Any = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from eyesdk.locators import HaarLocator, MediaPipeLocator
    from eyesdk.stream import EyeStream
    from eyesdk.timing import interleaved_us, summarize_us

    frames = shifted_frames(frame)
    tracking = MediaPipeLocator(models=models, tracking=True)
    every = MediaPipeLocator(models=models, tracking=False)
    contestants: dict[str, _Clocked] = {
        "landmarks, tracking": _Clocked(EyeStream(tracking, eye_state=eye_state), frames),
        "landmarks, detect every frame": _Clocked(EyeStream(every, eye_state=eye_state), frames),
        "crops, no locator": _Clocked(EyeStream(None, eye_state=eye_state), [crops]),
    }
    try:
        contestants["haar"] = _Clocked(EyeStream(HaarLocator(), eye_state=eye_state), frames)
    except ImportError as exc:  # no OpenCV here: say so rather than fail the run
        if progress:
            progress(f"haar skipped: {exc}")
    samples = interleaved_us(contestants, calls=calls, rounds=10, warmup=30)
    out = {}
    for name, us in samples.items():
        summary = summarize_us(us)
        out[name] = {**summary, "frames_per_second_p50": 1e6 / summary["p50"]}
        if progress:
            progress(f"{name}: p50 {summary['p50']:.0f} us = {1e6 / summary['p50']:.0f} frames/s")
    located = contestants["landmarks, tracking"].stream.update(frames[0], 1e6)
    return {
        "frame": list(frame.shape),
        "calls": calls,
        "backend": f"{eye_state.backend} {eye_state.precision}",
        "locator_backend": tracking.backend,
        "tracking_detector_runs": tracking.detections,
        "tracking_frames": contestants["landmarks, tracking"].i,
        "eyes_found": [e.valid for e in located.eyes],
        "threads": 1,
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "contestants": out,
    }


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def run_memory(eye_state: Any, crops: dict[bool, list[np.ndarray]], hours: float = 1.0, samples: int = 12,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from eyesdk.stream import EyeStream

    from .timeline import frame_times, script

    minutes = 60.0 * hours
    timeline = script(minutes * 0.8, minutes * 0.2, seed=7)
    times = frame_times(timeline.duration, fps=30.0, jitter=0.3, drop=0.02, seed=7)
    closed = timeline.closed_at(times)
    stream = EyeStream(locator=None, eye_state=eye_state)
    marks = np.linspace(0, len(times) - 1, samples + 1).astype(int)[1:]
    gc.collect()
    tracemalloc.start()
    trace = []
    events = 0
    base_rss = _rss_bytes()
    base_traced = tracemalloc.get_traced_memory()[0]
    mark = 0
    for i, (t, is_closed) in enumerate(zip(times.tolist(), closed.tolist(), strict=True)):
        run = crops[not is_closed]
        update = stream.update((run[i % len(run)], run[(i + 1) % len(run)]), t)
        events += len(update.events)
        if mark < len(marks) and i == marks[mark]:
            mark += 1
            gc.collect()
            point = {"stream_seconds": t, "rss_mb": None if base_rss is None else (_rss_bytes() - base_rss) / 2**20,
                     "traced_kb": (tracemalloc.get_traced_memory()[0] - base_traced) / 1024}
            trace.append(point)
            if progress:
                progress(f"{t / 60:.0f} min: rss +{point['rss_mb']:.1f} MB, traced +{point['traced_kb']:.0f} kB")
    tracemalloc.stop()
    half = trace[len(trace) // 2]
    return {
        "stream_hours": hours,
        "frames": len(times),
        "events": events,
        "samples": trace,
        "traced_growth_second_half_kb": trace[-1]["traced_kb"] - half["traced_kb"],
        "rss_growth_second_half_mb": None if base_rss is None else trace[-1]["rss_mb"] - half["rss_mb"],
    }
