"""Event accuracy of ``EyeStream`` on real crops of subjects the bundle did not train on.

Each unseen MRL subject's crops are played along its own scripted timeline (``timeline.script``: awake spells with
blinks, drowsy spells with long blinks, microsleeps and sleep; 30 fps with jitter and dropped frames) through
``EyeStream(locator=None)`` as (left, right) pairs, and what the stream reports is scored against the script
(``scoring``). Variants, all on the same frames:

- ``default``: the shipped configuration (adaptation on);
- ``fixed``: the same filter with adaptation frozen at the prior (a fixed threshold): what adaptation buys;
- ``per_frame``: no hysteresis, no minimum closure / reopening, no core rule: what the temporal filter buys.

``frames`` mode sends every crop through the whole stream (gate, classifier, everything); ``logits`` mode measures
each crop once through the same stream and replays the logits with ``update_logits`` (identical results, for
sweeps).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .playback import SubjectCrops, play_indices
from .scoring import Recording, pooled, score
from .timeline import Timeline, frame_times, script

CLOSURES = ("blink", "long_blink", "microsleep", "sleep")


def variants() -> dict[str, Any]:
    from eyesdk.stream import StreamConfig

    base = StreamConfig()
    return {
        "default": base,
        "fixed": replace(base, adaptation=replace(base.adaptation, enabled=False)),
        "per_frame": replace(base, adaptation=replace(base.adaptation, enabled=False),
                             filter=replace(base.filter, enter_closed=0.0, exit_closed=0.0),
                             events=replace(base.events, min_closure=0.0, min_reopen=0.0, confirm_depth=0.0,
                                            core_depth=0.0)),
    }


@dataclass
class Measured:
    """Per crop of one subject: calibrated logit (NaN where the quality gate refused it) and the gate's reason."""

    open: np.ndarray
    closed: np.ndarray
    refused: dict[str, int]


def measure(stream: Any, crops: SubjectCrops) -> Measured:
    """Each crop once through the stream's own gate and classifier (single-eye updates, 1 s apart)."""
    stream.reset()
    refused: dict[str, int] = {}
    out = {}
    t = 0.0
    for name, run in (("open", crops.open), ("closed", crops.closed)):
        values = np.full(len(run), np.nan)
        for i, crop in enumerate(run):
            t += 1.0
            eye = stream.update(crop, t).eyes[0]
            if eye.valid:
                values[i] = eye.logit
            else:
                refused[eye.reason] = refused.get(eye.reason, 0) + 1
        out[name] = values
    stream.reset()
    return Measured(out["open"], out["closed"], refused)


def record(stream: Any, timeline: Timeline, times: np.ndarray, crops: SubjectCrops,
           measured: Measured | None, trace: tuple[float, float] | None = None) -> Recording:
    """Run one subject's timeline through the stream (frames, or cached logits when ``measured`` is given);
    ``trace=(t0, t1)`` also keeps the fused score and PERCLOS of every update in that span (for the figure)."""
    stream.reset()
    rec = Recording()
    closed = timeline.closed_at(times)
    for t, (is_closed, i, j) in zip(times.tolist(), play_indices(crops, closed), strict=True):
        if measured is None:
            run = crops.closed if is_closed else crops.open
            update = stream.update((run[i], run[j]), t)
        else:
            values = measured.closed if is_closed else measured.open
            zl, zr = values[i], values[j]
            update = stream.update_logits({"left": None if zl != zl else float(zl),
                                           "right": None if zr != zr else float(zr)}, t)
        rec.frames += 1
        rec.unknown_frames += update.state == "unknown"
        for event in update.events:
            (rec.winks if event.kind == "wink" else rec.events).append(event)
        for alarm in update.alarms:
            if alarm.new:
                rec.alarms.append((t, alarm.kind))
        rec.perclos.append((t, update.perclos))
        if trace is not None and trace[0] <= t <= trace[1]:
            scores = [e.score for e in update.eyes if e.valid]
            rec.trace.append((t, sum(scores) / len(scores) if scores else None, update.perclos))
    rec.events += [e for e in stream.close() if e.kind in CLOSURES]
    return rec


def timeline_for(index: int, minutes_awake: float, minutes_drowsy: float, seed: int) -> tuple[Timeline, np.ndarray]:
    timeline = script(minutes_awake, minutes_drowsy, seed=seed + 1000 * index)
    times = frame_times(timeline.duration, fps=30.0, jitter=0.3, drop=0.02, seed=seed + 1000 * index)
    return timeline, times


def run(
    eye_state: Any,
    subjects: Sequence[SubjectCrops],
    minutes_awake: float,
    minutes_drowsy: float,
    mode: str = "frames",
    seed: int = 0,
    configs: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    figure: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Score every variant on every usable subject; returns the per-subject and pooled results, and with
    ``figure=(t0, t1)`` the first variant's trace of that span for every subject."""
    from eyesdk.stream import EyeStream

    configs = configs or variants()
    usable = [s for s in subjects if s.usable]
    skipped = [s.subject for s in subjects if not s.usable]
    results: dict[str, Any] = {name: {"subjects": {}} for name in configs}
    measured: dict[str, Measured] = {}
    refused: dict[str, dict[str, int]] = {}
    traces: dict[str, Any] = {}
    started = time.perf_counter()
    frames = 0
    for name, config in configs.items():
        stream = EyeStream(locator=None, eye_state=eye_state, config=config)
        for index, crops in enumerate(usable):
            timeline, times = timeline_for(index, minutes_awake, minutes_drowsy, seed)
            if mode == "logits" and crops.subject not in measured:
                measured[crops.subject] = measure(stream, crops)
                refused[crops.subject] = measured[crops.subject].refused
            span = figure if figure is not None and name == next(iter(configs)) else None
            rec = record(stream, timeline, times, crops, measured.get(crops.subject) if mode == "logits" else None,
                         trace=span)
            if span is not None:
                traces[crops.subject] = {
                    "span": list(span),
                    "truth": [(c.start, c.end, c.kind) for c in timeline.closures
                              if c.end > span[0] and c.start < span[1]],
                    "events": [(e.start, e.end, e.kind) for e in rec.events if e.end > span[0] and e.start < span[1]],
                    "alarms": [(t, k) for t, k in rec.alarms if span[0] <= t <= span[1]],
                    "trace": rec.trace,
                }
            frames += rec.frames
            result = score(timeline, rec)
            result["winks_reported"] = len(rec.winks)
            results[name]["subjects"][crops.subject] = result
            if progress:
                ev = result["events"]
                progress(f"{name} {crops.subject}: F1 {ev['f1']:.3f}, false long/h "
                         f"{result['false_long_per_awake_hour']:.2f}")
        results[name]["pooled"] = pooled(list(results[name]["subjects"].values()))
    seconds = time.perf_counter() - started
    return {
        "variants": results,
        "skipped_subjects": skipped,
        "refused_crops": refused,
        "frames": frames,
        "seconds": seconds,
        "traces": traces,
        "timeline": {"minutes_awake": minutes_awake, "minutes_drowsy": minutes_drowsy, "fps": 30.0,
                     "jitter": 0.3, "drop": 0.02, "seed": seed},
    }
