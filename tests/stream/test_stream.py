"""EyeStream end to end: crops in (no locator), logits in, events and alarms out, bad input as named errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import synthetic_eye

import eyesdk
from eyesdk.locators import FixedRegionLocator
from eyesdk.stream import (
    EyeStream,
    FrameError,
    StreamClosedError,
    StreamConfig,
    TimestampError,
    stream_config,
)

FPS = 30.0


@pytest.fixture(scope="module")
def eye_state() -> eyesdk.EyeState:
    return eyesdk.EyeState(backend="onnxruntime", precision="fp32")


@pytest.fixture(scope="module")
def crops() -> dict[bool, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return {state: [synthetic_eye(state, 48, rng) for _ in range(8)] for state in (True, False)}


def schedule(seconds: float, closures: list[tuple[float, float]]) -> list[tuple[float, bool]]:
    """(t, open?) at FPS for a script of closures (start, end)."""
    return [(i / FPS, not any(a <= i / FPS < b for a, b in closures)) for i in range(int(seconds * FPS))]


def play(stream: EyeStream, crops, plan, pair: bool = True):
    updates = []
    for i, (t, is_open) in enumerate(plan):
        crop = crops[is_open][i % len(crops[is_open])]
        updates.append(stream.update((crop, crop) if pair else crop, t))
    return updates


def test_blinks_long_blinks_and_a_microsleep_from_crops(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    script = [(1.0, 1.2), (3.0, 3.7), (5.0, 6.5), (8.0, 8.3)]
    updates = play(stream, crops, schedule(10.0, script))
    events = [e for u in updates for e in u.events] + stream.close()
    assert [e.kind for e in events] == ["blink", "long_blink", "microsleep", "blink"]
    for event, (a, b) in zip(events, script, strict=True):
        assert event.start == pytest.approx(a, abs=1.5 / FPS) and event.end == pytest.approx(b, abs=1.5 / FPS)
    alarms = [(u.timestamp, a.kind) for u in updates for a in u.alarms if a.new]
    assert alarms == [(pytest.approx(6.0, abs=1.5 / FPS), "microsleep")]  # raised 1 s in, before the eyes reopen
    assert {u.state for u in updates} == {"open", "closed"}
    assert all(e.valid and e.prob_open is not None for u in updates for e in u.eyes)


def test_one_eye_is_enough_and_none_is_unknown(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    u = stream.update((crops[True][0], None), 0.0)
    assert u.state == "open" and [e.valid for e in u.eyes] == [True, False] and u.eyes[1].reason == "no_eye"
    u = stream.update((None, None), 1 / FPS)
    assert u.state == "unknown"


def test_losing_the_eyes_never_reads_as_a_closure(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    updates = []
    for i in range(int(5 * FPS)):
        t = i / FPS
        crop = crops[True][i % 8]
        updates.append(stream.update((None, None) if 1.0 <= t < 3.0 else (crop, crop), t))
    assert [e for u in updates for e in u.events] == [] and not stream.close()
    assert {u.state for u in updates if 1.0 <= u.timestamp < 3.0} == {"unknown"}


def test_a_closure_lost_halfway_is_not_invented(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    events = []
    for i in range(int(4 * FPS)):
        t = i / FPS
        if 1.0 <= t < 1.3:
            frame = (crops[False][i % 8],) * 2
        elif 1.3 <= t < 2.5:
            frame = (None, None)
        else:
            frame = (crops[True][i % 8],) * 2
        events += stream.update(frame, t).events
    assert events == []


def test_a_single_crop_stream(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    updates = play(stream, crops, schedule(3.0, [(1.0, 1.3)]), pair=False)
    assert [e.kind for u in updates for e in u.events] == ["blink"]
    assert updates[0].eyes[0].side == "eye"


def test_update_logits_for_a_classifier_of_ones_own(eye_state) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    events = []
    for i in range(int(3 * FPS)):
        z = -6.0 if 30 <= i < 39 else 5.0
        events += stream.update_logits({"left": z, "right": z}, i / FPS).events
    assert [(e.kind, round(e.duration, 3)) for e in events] == [("blink", 0.3)]


def test_perclos_and_blink_rate_after_the_window(eye_state) -> None:
    config = stream_config(window={"window": 10.0})
    stream = EyeStream(locator=None, eye_state=eye_state, config=config)
    last = None
    for i in range(int(20 * FPS)):
        t = i / FPS
        closed = (t % 2.0) < 0.2  # a 0.2 s blink every 2 s: PERCLOS 10 %, 30 blinks/min
        last = stream.update_logits({"left": -6.0 if closed else 5.0}, t)
        if t < 9.9:
            assert last.perclos is None and last.blinks_per_minute is None
    assert last.perclos == pytest.approx(0.1, abs=0.02)
    assert last.blinks_per_minute == pytest.approx(30.0, abs=7.0)


def test_drowsy_alarm_from_perclos(eye_state) -> None:
    config = stream_config(window={"window": 10.0, "drowsy_on": 0.3, "drowsy_off": 0.2})
    stream = EyeStream(locator=None, eye_state=eye_state, config=config)
    raised = []
    for i in range(int(20 * FPS)):
        t = i / FPS
        closed = (t % 2.0) < 0.9  # 45 % closed
        u = stream.update_logits({"left": -6.0 if closed else 5.0}, t)
        raised += [(t, a.kind) for a in u.alarms if a.new]
    assert [k for _, k in raised] == ["drowsy"]


def test_adaptation_learns_a_person_whose_eyes_sit_near_the_threshold(eye_state) -> None:
    """Open eyes at +0.5, closed at -2.5 (glasses-like): the fixed threshold rarely confirms their blinks."""
    rng = np.random.default_rng(1)

    def blinks_found(adapt: bool) -> tuple[int, EyeStream]:
        config = stream_config(adaptation={"enabled": adapt})
        stream = EyeStream(locator=None, eye_state=eye_state, config=config)
        events = []
        for i in range(int(180 * FPS)):
            t = i / FPS
            closed = (t % 4.0) < 0.25
            z = rng.normal(-2.5, 0.5) if closed else rng.normal(0.5, 1.0)
            events += stream.update_logits({"left": z, "right": z + rng.normal(0, 0.3)}, t).events
        return sum(1 for e in events if e.kind == "blink" and 0.15 < e.duration < 0.35 and e.start > 120.0), stream

    true = int(60 / 4)  # in the third minute, once the levels are learned
    fixed, _ = blinks_found(False)
    adapted, stream = blinks_found(True)
    assert fixed < 0.5 * true and adapted >= 0.9 * true
    levels = stream.person()["left"]
    assert levels.open_level < 2.0 and -4.0 < levels.closed_level < -2.0 and levels.boundary < -0.5


def test_glint_runs_around_a_blink_do_not_make_it_a_microsleep(eye_state) -> None:
    """Glasses: open eyes the classifier scores just below the boundary for 0.5 s on each side of a real blink
    (measured on an unseen glasses subject) must not turn the 0.2 s blink into a >= 1 s closure."""
    rng = np.random.default_rng(2)
    stream = EyeStream(locator=None, eye_state=eye_state)
    events = []
    for i in range(int(120 * FPS)):
        t = i / FPS
        phase = t % 4.0
        if phase < 0.2:
            z = rng.normal(-5.0, 0.5)
        elif t > 60.0 and (phase > 3.5 or phase < 0.7):  # glint runs around every blink of the second minute
            z = rng.normal(-1.0, 0.3)
        else:
            z = rng.normal(5.0, 1.0)
        events += stream.update_logits({"left": z, "right": z + rng.normal(0, 0.3)}, t).events
    late = [e for e in events if e.start > 59.9 and e.kind != "wink"]
    assert late and all(e.duration < 0.5 for e in late)
    assert sum(1 for e in late if e.kind == "blink" and 0.15 < e.duration < 0.45) == 15  # one per blink


def test_alarm_since_and_event_start_are_the_core_onset(eye_state) -> None:
    """A 0.5 s shallow lead-in is not part of the closure: the alarm's ``since`` and the event's start agree."""
    stream = EyeStream(locator=None, eye_state=eye_state)
    alarms, events = [], []
    for i in range(int(5 * FPS)):
        t = i / FPS
        z = 5.5 if t < 1.0 or t >= 3.0 else (-2.2 if t < 1.5 else -6.0)  # -2.2: ~-0.4 in person units
        u = stream.update_logits({"left": z, "right": z}, t)
        alarms += [a for a in u.alarms if a.new]
        events += list(u.events)
    assert [a.kind for a in alarms] == ["microsleep"] and [e.kind for e in events] == ["microsleep"]
    assert alarms[0].since == pytest.approx(1.5, abs=1.5 / FPS) and events[0].start == alarms[0].since


def test_reset_forgets_everything(eye_state) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    for i in range(60):
        stream.update_logits({"left": 1.0}, i / FPS)
    stream.reset()
    assert stream.person() == {}
    assert stream.update_logits({"left": 5.0}, 0.0).state == "open"  # timestamps start over too


def test_values_serialise(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    u = stream.update((crops[True][0], crops[False][0]), 0.0)
    data = json.loads(json.dumps(u.to_dict()))
    assert data["timestamp"] == 0.0 and len(data["eyes"]) == 2 and data["eyes"][0]["box"] is None


def test_with_a_fixed_region_locator(eye_state, crops) -> None:
    frame = np.full((120, 160), 130, np.uint8)
    frame[20:68, 20:68] = crops[True][0]
    frame[20:68, 92:140] = crops[True][1]
    locator = FixedRegionLocator({"left": (20, 20, 48, 48), "right": (92, 20, 48, 48)})
    stream = EyeStream(locator=locator, eye_state=eye_state)
    u = stream.update(frame, 0.0)
    assert u.state == "open" and [e.box for e in u.eyes] == [(20, 20, 48, 48), (92, 20, 48, 48)]
    u = stream.update(np.dstack([frame] * 3), 0.1)  # BGR frames too
    assert u.state == "open"


@pytest.mark.parametrize(
    ("timestamps", "match"),
    [
        ((0.0, 0.0), r"timestamps must increase strictly: got 0.0 after 0.0"),
        ((1.0, 0.5), r"timestamps must increase strictly: got 0.5 after 1.0"),
        ((0.0, float("nan")), r"timestamp must be finite, got nan"),
        ((0.0, "1.0"), r"timestamp must be a number of seconds, got str"),
        ((0.0, True), r"timestamp must be a number of seconds, got bool"),
    ],
)
def test_bad_timestamps_are_named_errors(eye_state, crops, timestamps, match) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    stream.update(crops[True][0], timestamps[0])
    with pytest.raises(TimestampError, match=match):
        stream.update(crops[True][0], timestamps[1])


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("eye.png", r"a frame is one eye crop \(a numpy array\) or a \(left, right\) pair of crops"),
        ((1, 2, 3), r"got tuple of length 3"),
        ((np.zeros(5), None), r"the left crop must be a numpy array H x W or H x W x C, got \(5,\)"),
        ((None, "x"), r"the right crop must be a numpy array H x W or H x W x C, got str"),
    ],
)
def test_bad_crops_are_named_errors(eye_state, frame, match) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    with pytest.raises(FrameError, match=match):
        stream.update(frame, 0.0)


def test_a_tiny_crop_is_unknown_not_an_error(eye_state) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    u = stream.update(np.zeros((4, 4), np.uint8), 0.0)
    assert u.state == "unknown" and u.eyes[0].reason == "too_small"


@pytest.mark.parametrize(
    ("logits", "match"),
    [
        ({}, r"logits must map 'left'/'right' \(or 'eye'\) to a float or None"),
        ({"middle": 1.0}, r"logits must map"),
        ({"left": float("inf")}, r"the left logit must be a finite number or None, got inf"),
        ({"left": "1"}, r"the left logit must be a finite number or None, got '1'"),
    ],
)
def test_bad_logits_are_named_errors(eye_state, logits, match) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    with pytest.raises(FrameError, match=match):
        stream.update_logits(logits, 0.0)


def test_a_closed_stream_refuses_updates(eye_state, crops) -> None:
    stream = EyeStream(locator=None, eye_state=eye_state)
    stream.update(crops[True][0], 0.0)
    assert stream.close() == [] and stream.close() == []
    with pytest.raises(StreamClosedError, match=r"this stream was closed; call reset\(\) to start a new one"):
        stream.update(crops[True][0], 1.0)


def test_config_helpers_refuse_unknown_sections(eye_state) -> None:
    with pytest.raises(TypeError, match=r"unknown StreamConfig section\(s\) \['nope'\]"):
        stream_config(nope={})
    with pytest.raises(TypeError, match=r"config must be a StreamConfig, got dict"):
        EyeStream(locator=None, eye_state=eye_state, config={})
    assert isinstance(stream_config(), StreamConfig)


def test_stream_names_are_exported_lazily() -> None:
    assert eyesdk.EyeStream is EyeStream
    assert {"EyeStream", "StreamUpdate", "EyeEvent"} <= set(dir(eyesdk))
