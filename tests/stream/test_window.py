"""Trailing-window statistics: PERCLOS, blink rate, coverage, dropped spans, the drowsy alarm."""

from __future__ import annotations

import pytest

from eyesdk.stream.errors import StreamConfigError
from eyesdk.stream.window import TrailingWindow, WindowConfig


def filled(window: float = 60.0, until: float = 60.0) -> TrailingWindow:
    w = TrailingWindow(WindowConfig(window=window))
    w.start(0.0)
    w.add_valid(0.0, until)
    return w


def test_perclos_is_closed_time_over_valid_time() -> None:
    w = filled()
    for start in range(0, 60, 10):
        w.add_closure(start + 1.0, start + 1.5, "blink")  # 6 x 0.5 s closed in 60 s
    assert w.perclos(60.0) == pytest.approx(3.0 / 60.0)
    assert w.blinks_per_minute(60.0) == pytest.approx(6.0)


def test_the_closure_in_progress_counts() -> None:
    w = filled()
    assert w.perclos(60.0, ongoing_start=54.0) == pytest.approx(0.1)
    assert w.perclos(60.0, ongoing_start=54.0, ongoing_end=57.0) == pytest.approx(0.05)


def test_nothing_is_reported_before_the_window_is_covered() -> None:
    w = filled(until=30.0)
    assert w.perclos(30.0) is None and w.blinks_per_minute(30.0) is None
    w = TrailingWindow(WindowConfig(window=60.0, min_coverage=0.5))
    w.start(0.0)
    w.add_valid(0.0, 20.0)  # 20 s valid of 60: under half
    assert w.perclos(60.0) is None
    w.add_valid(40.0, 60.0)
    assert w.perclos(60.0) == pytest.approx(0.0)


def test_old_time_leaves_the_window() -> None:
    w = filled(until=120.0)
    w.add_closure(10.0, 40.0, "sleep")
    assert w.perclos(60.0) == pytest.approx(0.5)
    assert w.perclos(120.0) == pytest.approx(0.0)


def test_a_dropped_span_is_not_valid_time() -> None:
    w = filled()
    w.invalidate(0.0, 30.0)
    assert w.perclos(60.0) == pytest.approx(0.0)  # 30 s valid left: exactly the coverage needed
    w.invalidate(30.0, 31.0)
    assert w.perclos(60.0) is None


def test_drowsy_alarm_has_hysteresis() -> None:
    w = TrailingWindow(WindowConfig(drowsy_on=0.15, drowsy_off=0.10))
    assert w.drowsy(1.0, None) == (False, False)
    assert w.drowsy(2.0, 0.16) == (True, True)
    assert w.drowsy(3.0, 0.12) == (True, False)  # between off and on: still drowsy
    assert w.drowsy_since == 2.0
    assert w.drowsy(4.0, 0.05) == (False, False)
    assert w.drowsy_since is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0.0}, r"WindowConfig.window = 0.0 is out of range"),
        ({"min_coverage": 1.5}, r"WindowConfig.min_coverage = 1.5 is out of range"),
        ({"drowsy_on": 0.1, "drowsy_off": 0.2}, r"drowsy_off 0.2 must not exceed drowsy_on 0.1"),
    ],
)
def test_bad_window_config_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(StreamConfigError, match=match):
        WindowConfig(**kwargs)
