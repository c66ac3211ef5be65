"""Scripted timelines, crop playback and event scoring (one-to-one IoU matching, PERCLOS windows, false alarms)."""

from __future__ import annotations

import numpy as np
import pytest

from eyesdk.benchmarks.stream.playback import SubjectCrops, Walker, play, play_indices
from eyesdk.benchmarks.stream.scoring import Recording, iou, match, perclos_errors, prf, score
from eyesdk.benchmarks.stream.timeline import AWAKE, DROWSY, Closure, Spell, Timeline, frame_times, script
from eyesdk.stream.values import EyeEvent


def test_scripts_are_reproducible_and_realistic() -> None:
    a, b = script(10, 2, seed=3), script(10, 2, seed=3)
    assert a == b and a.duration == 720.0
    assert {s.mode for s in a.spells} == {AWAKE, DROWSY} and a.awake_seconds() == pytest.approx(600.0)
    awake = [c for c in a.closures if a.mode_at(c.start) == AWAKE]
    drowsy = [c for c in a.closures if a.mode_at(c.start) == DROWSY]
    assert min(c.duration for c in awake) >= 0.1 and max(c.duration for c in awake) < 1.0  # no >= 1 s when awake
    assert 10 <= len(awake) / 10 <= 20  # ~15 blinks a minute
    assert {c.kind for c in drowsy} >= {"long_blink", "microsleep"}
    assert all(x.end < y.start for x, y in zip(a.closures, a.closures[1:], strict=False))


def test_frame_times_increase_and_drop_frames() -> None:
    t = frame_times(10.0, fps=30.0, jitter=0.3, drop=0.1, seed=1)
    assert np.all(np.diff(t) > 0) and 240 < len(t) < 300
    assert len(frame_times(10.0)) == 300


def test_closed_at_uses_half_open_intervals() -> None:
    tl = Timeline(3.0, (Closure(1.0, 1.5, "long_blink"),), (Spell(0.0, 3.0, AWAKE),))
    assert tl.closed_at(np.array([0.9, 1.0, 1.49, 1.5])).tolist() == [False, True, True, False]
    assert tl.closed_seconds(0.0, 1.25) == pytest.approx(0.25)


def test_walkers_go_back_and_forth_and_eyes_read_neighbours() -> None:
    w = Walker(3)
    assert [w.next() for _ in range(7)] == [0, 1, 2, 1, 0, 1, 2]
    crops = SubjectCrops("s", open=[np.full((8, 8), i, np.uint8) for i in range(6)],
                         closed=[np.full((8, 8), 100 + i, np.uint8) for i in range(4)], attrs={})
    closed = np.array([False, False, True, True, False])
    assert list(play_indices(crops, closed)) == [(False, 0, 1), (False, 2, 3), (True, 0, 1), (True, 2, 3),
                                                  (False, 4, 5)]
    frames = list(play(crops, closed))
    assert frames[2][0][0, 0] == 100 and frames[2][1][0, 0] == 101


def test_matching_is_one_to_one_at_iou_half() -> None:
    assert iou(0, 1, 0.5, 1.5) == pytest.approx(1 / 3)
    truth = [(1.0, 1.3), (3.0, 3.2), (5.0, 6.0)]
    found = [(1.02, 1.3), (1.05, 1.28), (3.15, 3.4), (5.0, 5.9)]
    pairs = match(truth, found)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 0), (2, 3)]  # one found per truth; (3.15, 3.4) IoU 0.125
    assert prf(2, 3, 4) == {"tp": 2, "truth": 3, "found": 4, "precision": 0.5, "recall": 2 / 3,
                            "f1": pytest.approx(4 / 7)}


def test_score_counts_false_long_closures_alarms_and_perclos() -> None:
    tl = Timeline(120.0, (Closure(10.0, 10.2, "blink"), Closure(70.0, 72.0, "microsleep")),
                  (Spell(0.0, 60.0, AWAKE), Spell(60.0, 120.0, DROWSY)))
    rec = Recording(events=[EyeEvent("blink", 10.0, 10.2), EyeEvent("microsleep", 30.0, 31.5),
                            EyeEvent("microsleep", 70.0, 71.9)],
                    alarms=[(31.0, "microsleep"), (71.05, "microsleep")],
                    perclos=[(60.0, 0.03), (120.0, 0.02)], frames=100)
    r = score(tl, rec)
    assert r["events"]["tp"] == 2 and r["events"]["found"] == 3
    assert r["false_long_closures_awake"] == 1 and r["false_long_per_awake_hour"] == pytest.approx(60.0)
    assert r["false_alarms"] == 1 and r["alarm_latency_s"]["median"] == pytest.approx(0.05)
    assert perclos_errors(tl, rec) == [pytest.approx(100 * (0.03 - 0.2 / 60)), pytest.approx(100 * (2 / 60 - 0.02))]
