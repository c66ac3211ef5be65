"""The closure state machine on synthetic traces: every kind, gaps, unknown spans, bridging, depth, alarms."""

from __future__ import annotations

import pytest

from eyesdk.stream.errors import StreamConfigError
from eyesdk.stream.events import EventConfig, MachineState, Phase, finish, step

FPS = 30.0


def run(trace, config=None, fps=FPS, start=0.0):
    """trace: list of (state, n_frames[, score]); returns (events, alarms [(t, kind, new)], final state)."""
    config = config or EventConfig()
    state = MachineState()
    events, alarms = [], []
    k = 0
    for item in trace:
        observed, n = item[0], item[1]
        score = item[2] if len(item) > 2 else (-1.0 if observed == "closed" else 1.0)
        for _ in range(n):
            t = start + k / fps
            k += 1
            result = step(state, observed, t, config, score)
            state = result.state
            if result.event is not None:
                events.append(result.event)
            if result.alarm is not None:
                alarms.append((t, result.alarm, result.alarm_new))
    return events, alarms, state


@pytest.mark.parametrize(
    ("closed_frames", "kind"),
    [(6, "blink"), (14, "blink"), (15, "long_blink"), (29, "long_blink"), (30, "microsleep"), (89, "microsleep"),
     (90, "sleep"), (300, "sleep")],
)
def test_each_closure_ends_in_one_event_of_its_duration(closed_frames: int, kind: str) -> None:
    events, _, _ = run([("open", 30), ("closed", closed_frames), ("open", 30)])
    assert len(events) == 1
    event = events[0]
    assert event.kind == kind
    assert event.start == pytest.approx(1.0)
    assert event.duration == pytest.approx(closed_frames / FPS)
    assert not event.clipped


def test_kind_thresholds_are_configurable() -> None:
    config = EventConfig(long_blink_from=0.2, microsleep_from=0.4, sleep_from=0.6)
    kinds = [run([("open", 5), ("closed", n), ("open", 5)], config)[0][0].kind for n in (3, 9, 15, 21)]
    assert kinds == ["blink", "long_blink", "microsleep", "sleep"]


def test_alarms_rise_while_the_closure_lasts_and_escalate() -> None:
    _, alarms, state = run([("open", 30), ("closed", 120)])
    first = {kind: t for t, kind, new in alarms if new}
    assert first["microsleep"] == pytest.approx(2.0, abs=1e-9)  # closed from t=1.0: warned at 1 s, not at the end
    assert first["sleep"] == pytest.approx(4.0, abs=1e-9)
    assert sum(new for _, _, new in alarms) == 2  # "new" only when first raised
    assert state.phase is Phase.CLOSED and state.alarm == "sleep"


def test_short_closures_are_noise() -> None:
    events, _, _ = run([("open", 30), ("closed", 1), ("open", 30)])  # one frame: 33 ms < min_closure 50 ms
    assert events == []


def test_a_flicker_open_inside_a_closure_is_bridged() -> None:
    events, _, _ = run([("open", 30), ("closed", 8), ("open", 1), ("closed", 8), ("open", 30)])
    assert [e.kind for e in events] == ["long_blink"]  # one slow blink, not two blinks
    assert events[0].duration == pytest.approx(17 / FPS)


def test_a_real_reopening_splits_two_blinks() -> None:
    events, _, _ = run([("open", 30), ("closed", 6), ("open", 10), ("closed", 6), ("open", 30)])
    assert [e.kind for e in events] == ["blink", "blink"]


def test_shallow_closures_are_not_confirmed() -> None:
    events, alarms, _ = run([("open", 30), ("closed", 60, -0.3), ("open", 30)])
    assert events == [] and alarms == []
    events, _, _ = run([("open", 30), ("closed", 5, -0.3), ("closed", 1, -0.9), ("open", 30)])
    assert len(events) == 1 and events[0].duration == pytest.approx(6 / FPS)


def test_a_closure_is_its_core_not_the_shallow_runs_around_it() -> None:
    """Open frames the classifier puts just below the boundary, around a real blink, must not stretch it (glasses)."""
    shallow, deep = -0.35, -1.0  # below enter_closed, above core_depth / below it
    events, alarms, _ = run([("open", 30), ("closed", 15, shallow), ("closed", 8, deep), ("closed", 15, shallow),
                             ("open", 30)])
    assert len(events) == 1 and alarms == []
    assert events[0].kind == "blink"
    assert events[0].start == pytest.approx(45 / FPS) and events[0].duration == pytest.approx(8 / FPS)
    # shallow runs no longer than max_shallow stay part of it (eyelids move through a frame or two)
    events, _, _ = run([("open", 30), ("closed", 3, shallow), ("closed", 8, deep), ("closed", 3, shallow),
                        ("open", 30)])
    assert events[0].start == pytest.approx(30 / FPS) and events[0].duration == pytest.approx(14 / FPS)


def test_a_long_shallow_run_ends_the_closure_and_a_short_one_is_bridged() -> None:
    config = EventConfig()
    bridged = int(config.max_bridge * FPS) - 1
    events, _, _ = run([("open", 30), ("closed", 20, -1.0), ("closed", bridged, -0.35), ("closed", 20, -1.0),
                        ("open", 30)])
    assert len(events) == 1 and events[0].duration == pytest.approx((40 + bridged) / FPS)
    events, _, state = run([("open", 30), ("closed", 20, -1.0), ("closed", 60, -0.35)])
    assert len(events) == 1 and events[0].duration == pytest.approx(20 / FPS)
    assert state.phase is Phase.CLOSED and not state.confirmed(config)  # what follows is a new, unconfirmed one


def test_unseen_frames_after_the_core_count_towards_its_end() -> None:
    """Unknown frames are bridged, but they are not core: 0.27 s unseen then shallow frames end the closure."""
    events, _, _ = run([("open", 30), ("closed", 30, -1.0), ("unknown", 8), ("closed", 4, -0.35), ("open", 30)])
    assert len(events) == 1 and events[0].duration == pytest.approx(30 / FPS)


def test_alarms_count_from_the_core_onset() -> None:
    """A long shallow lead-in before a real closure does not bring its microsleep alarm forward."""
    events, alarms, _ = run([("open", 30), ("closed", 20, -0.35), ("closed", 40, -1.0), ("open", 30)])
    assert events[0].kind == "microsleep" and events[0].start == pytest.approx(50 / FPS)
    first = next(t for t, kind, new in alarms if new)
    assert first == pytest.approx(80 / FPS, abs=1.5 / FPS)  # 1 s after the core began, not the shallow start


def test_unknown_inside_a_closure_is_bridged_when_short_and_ends_it_when_long() -> None:
    events, _, _ = run([("open", 30), ("closed", 6), ("unknown", 3), ("closed", 6), ("open", 30)])
    assert len(events) == 1 and events[0].duration == pytest.approx(15 / FPS)
    events, alarms, state = run([("open", 30), ("closed", 20), ("unknown", 60), ("open", 30)])
    assert events == []  # the eyes were lost for 2 s: no event is invented
    assert state.phase is Phase.OPEN


def test_unknown_never_starts_a_closure() -> None:
    events, alarms, _ = run([("open", 30), ("unknown", 300), ("open", 30)])
    assert events == [] and alarms == []


def test_a_gap_between_updates_drops_the_closure() -> None:
    config = EventConfig()
    state = MachineState()
    for i in range(30):
        state = step(state, "open", i / FPS, config, 1.0).state
    for i in range(30, 40):
        state = step(state, "closed", i / FPS, config, -1.0).state
    assert state.phase is Phase.CLOSED
    result = step(state, "open", 40 / FPS + 2.0, config, 1.0)  # 2 s without frames > max_gap 0.5 s
    assert result.event is None and result.state.phase is Phase.OPEN
    assert result.ended == "unknown"  # not "noise": the held closed frames must not be learned as open eyes
    again = step(state, "closed", 40 / FPS + 2.0, config, -1.0)  # a new closure right after the hole
    assert again.ended == "unknown" and again.state.start == pytest.approx(40 / FPS + 2.0)


def test_step_says_how_a_closure_ended() -> None:
    config = EventConfig()
    state, ends = MachineState(), []
    trace = ["open"] * 30 + ["closed"] * 6 + ["open"] * 10 + ["closed"] * 1 + ["open"] * 10 + ["closed"] * 6 + \
        ["unknown"] * 20
    for i, observed in enumerate(trace):
        score = {"open": 1.0, "closed": -1.0, "unknown": None}[observed]
        result = step(state, observed, i / FPS, config, score)
        state = result.state
        if result.ended:
            ends.append(result.ended)
    assert ends == ["event", "noise", "unknown"]  # a blink, a one-frame flicker, eyes lost mid-closure


def test_time_comes_from_timestamps_not_frame_counts() -> None:
    events, _, _ = run([("open", 15), ("closed", 3), ("open", 15)], fps=10.0)  # 10 fps: 3 frames = 0.3 s
    assert events[0].duration == pytest.approx(0.3)
    events, _, _ = run([("open", 60), ("closed", 18), ("open", 60)], fps=60.0)
    assert events[0].duration == pytest.approx(0.3)


def test_a_closure_after_unknown_is_clipped() -> None:
    events, _, _ = run([("unknown", 10), ("closed", 6), ("open", 30)])
    assert len(events) == 1 and events[0].clipped


def test_finish_completes_the_closure_in_progress() -> None:
    _, _, state = run([("open", 30), ("closed", 45)])
    event = finish(state, EventConfig())
    assert event.kind == "microsleep" and event.clipped
    _, _, state = run([("open", 30), ("closed", 6), ("open", 1)])  # reopening not yet confirmed
    event = finish(state, EventConfig())
    assert event.kind == "blink" and event.duration == pytest.approx(6 / FPS)
    assert finish(run([("open", 30)])[2], EventConfig()) is None
    _, _, state = run([("open", 30), ("closed", 20, -1.0), ("closed", 6, -0.35)])  # ends in a short shallow tail
    assert finish(state, EventConfig()).clipped
    # a shallow tail longer than max_shallow (not yet max_bridge: still in progress) ended the core inside the
    # stream: the event's end was seen
    config = EventConfig(max_bridge=1.0)
    _, _, state = run([("open", 30), ("closed", 20, -1.0), ("closed", 12, -0.35)], config)
    event = finish(state, config)
    assert not event.clipped and event.duration == pytest.approx(20 / FPS)


def test_scoreless_callers_count_as_deep() -> None:
    config = EventConfig()
    state = MachineState()
    events = []
    for i, observed in enumerate(["open"] * 10 + ["closed"] * 6 + ["open"] * 5):
        result = step(state, observed, i / FPS, config)
        state = result.state
        events += [result.event] if result.event else []
    assert len(events) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"long_blink_from": 0.0}, r"EventConfig.long_blink_from = 0.0 is out of range"),
        ({"min_closure": -1.0}, r"EventConfig.min_closure = -1.0 is out of range"),
        ({"max_gap": float("nan")}, r"EventConfig.max_gap = nan is out of range"),
        ({"microsleep_from": 4.0}, r"thresholds must increase"),
        ({"confirm_depth": 3.0}, r"EventConfig.confirm_depth = 3.0 is out of range"),
        ({"max_shallow": 0.0}, r"EventConfig.max_shallow = 0.0 is out of range"),
        ({"max_bridge": 0.1}, r"EventConfig.max_bridge = 0.1 is out of range"),
        ({"confirm_depth": 0.3}, r"EventConfig.core_depth = 0.5 is out of range; allowed \[-2.0, 0.3\]"),
    ],
)
def test_bad_event_config_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(StreamConfigError, match=match):
        EventConfig(**kwargs)
