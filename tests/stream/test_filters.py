"""Per-eye smoothing and hysteresis, fusion, winks."""

from __future__ import annotations

import math

import pytest

from eyesdk.stream.errors import StreamConfigError
from eyesdk.stream.filters import EyeFilter, FilterConfig, fuse, hysteresis
from eyesdk.stream.winks import WinkConfig, WinkDetector, closed_side


def test_hysteresis_edges() -> None:
    cfg = FilterConfig(enter_closed=-0.2, exit_closed=0.2)
    assert hysteresis("open", -0.2, cfg) == "open"  # at the threshold: not past it
    assert hysteresis("open", -0.21, cfg) == "closed"
    assert hysteresis("closed", 0.2, cfg) == "closed"
    assert hysteresis("closed", 0.21, cfg) == "open"
    assert hysteresis("closed", 0.0, cfg) == "closed" and hysteresis("open", 0.0, cfg) == "open"
    assert hysteresis("unknown", -0.1, cfg) == "closed" and hysteresis("unknown", 0.1, cfg) == "open"
    assert hysteresis("open", None, cfg) == "unknown"


def test_smoothing_is_in_seconds_not_frames() -> None:
    values = []
    for fps in (10.0, 50.0):
        f = EyeFilter(FilterConfig(smoothing=0.1))
        f.update(1.0, 0.0)
        n = round(0.1 * fps)
        for i in range(1, n + 1):
            smoothed, _ = f.update(-1.0, i / fps)
        values.append(smoothed)
    expected = 1.0 - 2.0 * (1.0 - math.exp(-1.0))  # after 0.1 s = one time constant, at any frame rate
    assert values == [pytest.approx(expected, abs=1e-9)] * 2


def test_an_eye_unseen_for_long_starts_afresh() -> None:
    f = EyeFilter(FilterConfig(smoothing=1.0, reset_after=0.5))
    f.update(1.0, 0.0)
    assert f.update(None, 0.1) == (None, "unknown")
    assert f.update(-1.0, 0.2)[0] == pytest.approx(1.0 - 2.0 * (1.0 - math.exp(-0.2)))  # smoothing from the old value
    f.update(None, 0.3)
    f.update(None, 1.0)
    assert f.update(-1.0, 1.1)[0] == -1.0


def test_fuse_uses_whatever_eyes_are_valid() -> None:
    assert fuse([1.0, -0.5]) == pytest.approx(0.25)
    assert fuse([None, -0.5]) == -0.5
    assert fuse([None, None]) is None and fuse([]) is None


def test_winks_need_one_eye_closed_and_the_other_open() -> None:
    d = WinkDetector(WinkConfig(enabled=True, min_duration=0.1, max_duration=1.0))
    assert closed_side({"left": "closed", "right": "open"}) == "left"
    assert closed_side({"left": "closed", "right": "closed"}) is None
    assert closed_side({"left": "closed", "right": "unknown"}) is None
    states = [("open", "open")] * 3 + [("closed", "open")] * 6 + [("open", "open")] * 3
    events = [d.update(i / 30, {"left": a, "right": b}) for i, (a, b) in enumerate(states)]
    winks = [e for e in events if e is not None]
    assert len(winks) == 1 and winks[0].kind == "wink" and winks[0].side == "left"
    assert winks[0].duration == pytest.approx(0.2)


def test_asymmetry_that_becomes_a_blink_or_is_too_short_is_no_wink() -> None:
    d = WinkDetector(WinkConfig(enabled=True))
    states = [("open", "open")] * 3 + [("closed", "open")] * 6 + [("closed", "closed")] * 6 + [("open", "open")] * 3
    assert all(d.update(i / 30, {"left": a, "right": b}) is None for i, (a, b) in enumerate(states))
    d = WinkDetector(WinkConfig(enabled=True))
    states = [("open", "open")] * 3 + [("open", "closed")] * 2 + [("open", "open")] * 3
    assert all(d.update(i / 30, {"left": a, "right": b}) is None for i, (a, b) in enumerate(states))
    d = WinkDetector(WinkConfig(enabled=False))
    assert d.update(0.0, {"left": "closed", "right": "open"}) is None


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FilterConfig(enter_closed=0.5, exit_closed=0.1), r"enter_closed 0.5 must not exceed exit_closed"),
        (lambda: FilterConfig(smoothing=-1.0), r"FilterConfig.smoothing = -1.0 is out of range"),
        (lambda: WinkConfig(min_duration=2.0, max_duration=1.0), r"min_duration 2.0 must not exceed max_duration"),
    ],
)
def test_bad_filter_config_is_refused(make, match: str) -> None:
    with pytest.raises(StreamConfigError, match=match):
        make()
