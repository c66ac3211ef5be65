"""Scoring a stream's output against a ground-truth timeline: event F1, PERCLOS error, false long closures, alarms.

- Events are matched one to one, greedily by temporal IoU (highest first), a pair counting only at IoU >= 0.5.
- PERCLOS is compared at the end of each full 60 s window (the stream's trailing-window value at the last update
  before the window end against the closed fraction of the window in the script).
- A false >= 1 s closure is a reported closure of 1 s or more that matches no scripted closure of 1 s or more; they
  are counted per hour of awake script. A false alarm is a microsleep/sleep alarm raised while no scripted closure of
  1 s or more was in progress. Alarm latency is the time from a scripted closure's first second to its first alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .timeline import AWAKE, Closure, Timeline

CLOSURE_KINDS = ("blink", "long_blink", "microsleep", "sleep")


def iou(a0: float, a1: float, b0: float, b1: float) -> float:
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else 0.0


def match(truth: Sequence[tuple[float, float]], found: Sequence[tuple[float, float]],
          threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one (truth index, found index, IoU) pairs, greedy by IoU, only pairs with IoU >= threshold."""
    pairs = []
    j0 = 0
    for i, (t0, t1) in enumerate(truth):
        while j0 < len(found) and found[j0][1] < t0:
            j0 += 1
        j = j0
        while j < len(found) and found[j][0] <= t1:
            value = iou(t0, t1, *found[j])
            if value >= threshold:
                pairs.append((value, i, j))
            j += 1
    pairs.sort(reverse=True)
    used_t, used_f, out = set(), set(), []
    for value, i, j in pairs:
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            out.append((i, j, value))
    return out


def prf(tp: int, n_truth: int, n_found: int) -> dict[str, float | int]:
    precision = tp / n_found if n_found else 1.0
    recall = tp / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "truth": n_truth, "found": n_found, "precision": precision, "recall": recall, "f1": f1}


@dataclass
class Recording:
    """What a stream reported over one timeline."""

    events: list = field(default_factory=list)  # EyeEvent closures (winks excluded)
    winks: list = field(default_factory=list)
    alarms: list[tuple[float, str]] = field(default_factory=list)  # (time first raised, kind)
    perclos: list[tuple[float, float | None]] = field(default_factory=list)  # (time, value) at updates
    unknown_frames: int = 0
    frames: int = 0
    trace: list[tuple[float, float | None, float | None]] = field(default_factory=list)  # (t, fused score, perclos)


def perclos_errors(timeline: Timeline, recording: Recording, window: float = 60.0) -> list[float]:
    """|stream - script| PERCLOS in points (percent), one per full window."""
    if not recording.perclos:
        return []
    times = np.array([t for t, _ in recording.perclos])
    errors = []
    end = window
    while end <= timeline.duration + 1e-9:
        i = int(np.searchsorted(times, end, side="right")) - 1
        if i >= 0:
            value = recording.perclos[i][1]
            truth = timeline.closed_seconds(end - window, end) / window
            if value is not None:
                errors.append(abs(value - truth) * 100.0)
        end += window
    return errors


def score(timeline: Timeline, recording: Recording) -> dict:
    truth = [(c.start, c.end) for c in timeline.closures]
    found = [(e.start, e.end) for e in recording.events]
    pairs = match(truth, found)
    result = {"events": prf(len(pairs), len(truth), len(found))}
    kinds_ok = sum(1 for i, j, _ in pairs if timeline.closures[i].kind == recording.events[j].kind)
    result["kind_accuracy"] = kinds_ok / len(pairs) if pairs else None
    per_kind = {}
    for kind in CLOSURE_KINDS:
        idx = [i for i, c in enumerate(timeline.closures) if c.kind == kind]
        hit = {i for i, _, _ in pairs}
        if idx:
            per_kind[kind] = {"truth": len(idx), "recall": sum(1 for i in idx if i in hit) / len(idx)}
    result["recall_by_kind"] = per_kind
    blink_truth = [(c.start, c.end) for c in timeline.closures if c.kind == "blink"]
    blink_found = [(e.start, e.end) for e in recording.events if e.duration < 0.5]
    result["blinks"] = prf(len(match(blink_truth, blink_found)), len(blink_truth), len(blink_found))

    long_truth = [c for c in timeline.closures if c.duration >= 1.0]
    long_found = [e for e in recording.events if e.duration >= 1.0]
    long_pairs = match([(c.start, c.end) for c in long_truth], [(e.start, e.end) for e in long_found])
    matched = {j for _, j, _ in long_pairs}
    false_long = [e for j, e in enumerate(long_found) if j not in matched and _overlaps_none(e, long_truth)]
    awake_hours = timeline.awake_seconds() / 3600.0
    false_long_awake = [e for e in false_long if timeline.mode_at(e.start) == AWAKE]
    result["false_long_closures"] = len(false_long)
    result["false_long_closures_awake"] = len(false_long_awake)
    result["awake_hours"] = awake_hours
    result["false_long_per_awake_hour"] = len(false_long_awake) / awake_hours if awake_hours else None

    false_alarms, latencies, missed = 0, [], 0
    false_alarms_awake = 0
    alarm_times = sorted(t for t, kind in recording.alarms if kind in ("microsleep", "sleep"))
    for t in alarm_times:
        if not any(c.start <= t <= c.end + 0.5 for c in long_truth):
            false_alarms += 1
            false_alarms_awake += timeline.mode_at(t) == AWAKE
    for c in long_truth:
        hits = [t for t in alarm_times if c.start <= t <= c.end + 0.5]
        if hits:
            latencies.append(hits[0] - (c.start + 1.0))
        else:
            missed += 1
    result["false_alarms"] = false_alarms
    result["false_alarms_per_awake_hour"] = false_alarms_awake / awake_hours if awake_hours else None
    result["alarm_latency_s"] = _summary(latencies)
    result["alarms_missed"] = missed
    result["long_closures"] = len(long_truth)
    errors = perclos_errors(timeline, recording)
    result["perclos_mae_points"] = float(np.mean(errors)) if errors else None
    result["perclos_windows"] = len(errors)
    result["unknown_fraction"] = recording.unknown_frames / recording.frames if recording.frames else None
    return result


def _overlaps_none(event, closures: Sequence[Closure]) -> bool:
    return not any(c.start < event.end and event.start < c.end for c in closures)


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "p90": None, "max": None}
    arr = np.asarray(values)
    return {"n": len(values), "median": float(np.median(arr)), "p90": float(np.percentile(arr, 90)),
            "max": float(arr.max())}


def pooled(results: Sequence[dict]) -> dict:
    """Counts summed over subjects, rates recomputed from the sums."""
    def total(key: str, sub: str | None = None) -> int:
        return sum((r[key][sub] if sub else r[key]) for r in results)

    out = {"events": prf(total("events", "tp"), total("events", "truth"), total("events", "found")),
           "blinks": prf(total("blinks", "tp"), total("blinks", "truth"), total("blinks", "found"))}
    hours = sum(r["awake_hours"] for r in results)
    out["awake_hours"] = hours
    out["false_long_closures_awake"] = total("false_long_closures_awake")
    out["false_long_per_awake_hour"] = out["false_long_closures_awake"] / hours if hours else None
    false_awake = sum(r["false_alarms_per_awake_hour"] * r["awake_hours"] for r in results
                      if r["false_alarms_per_awake_hour"] is not None)
    out["false_alarms_per_awake_hour"] = false_awake / hours if hours else None
    out["false_alarms"] = total("false_alarms")
    out["alarms_missed"] = total("alarms_missed")
    out["long_closures"] = total("long_closures")
    windows = sum(r["perclos_windows"] for r in results)
    out["perclos_mae_points"] = (sum(r["perclos_mae_points"] * r["perclos_windows"] for r in results
                                     if r["perclos_mae_points"] is not None) / windows) if windows else None
    out["perclos_windows"] = windows
    return out
