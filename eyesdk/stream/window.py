"""Trailing-window statistics of a stream: PERCLOS, blinks per minute and the drowsy alarm.

Only time is counted, never frames: valid time is the time between consecutive updates that saw an eye (gaps longer
than the stream's max_gap are not counted), closed time is the part of it covered by closures. Closures count once
the state machine has accepted them (completed events) plus the one in progress, so a flicker the machine drops as
noise never inflates PERCLOS. Memory is bounded by the window: segments and closures older than it are discarded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .errors import StreamConfigError, check_range
from .values import BLINK, LONG_BLINK


@dataclass(frozen=True)
class WindowConfig:
    """window: trailing seconds; min_coverage: fraction of the window that must be valid time before PERCLOS and
    the blink rate are reported; drowsy_on / drowsy_off: PERCLOS at which the drowsy alarm starts / ends (a gap
    between them keeps it from flickering)."""

    window: float = 60.0
    min_coverage: float = 0.5
    drowsy_on: float = 0.15
    drowsy_off: float = 0.10

    def __post_init__(self) -> None:
        check_range("WindowConfig", "window", self.window, 0.0, lo_open=True)
        check_range("WindowConfig", "min_coverage", self.min_coverage, 0.0, 1.0, lo_open=True)
        check_range("WindowConfig", "drowsy_on", self.drowsy_on, 0.0, 1.0, lo_open=True)
        check_range("WindowConfig", "drowsy_off", self.drowsy_off, 0.0, 1.0)
        if self.drowsy_off > self.drowsy_on:
            raise StreamConfigError(
                f"WindowConfig.drowsy_off {self.drowsy_off} must not exceed drowsy_on {self.drowsy_on}"
            )


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


class TrailingWindow:
    """PERCLOS, blink rate and the drowsy flag over the last ``config.window`` seconds."""

    def __init__(self, config: WindowConfig | None = None) -> None:
        self.config = config or WindowConfig()
        self.reset()

    def reset(self) -> None:
        self._first: float | None = None
        self._valid: deque[list[float]] = deque()  # merged [t0, t1] segments of valid time
        self._closures: deque[tuple[float, float, str]] = deque()  # completed (start, end, kind)
        self.drowsy_since: float | None = None

    def add_valid(self, t0: float, t1: float) -> None:
        """Time from t0 to t1 was observed with a usable eye."""
        if self._first is None:
            self._first = t0
        if t1 <= t0:
            return
        if self._valid and t0 <= self._valid[-1][1]:
            self._valid[-1][1] = max(self._valid[-1][1], t1)
        else:
            self._valid.append([t0, t1])

    def start(self, t: float) -> None:
        """The stream began at t (coverage is measured from here)."""
        if self._first is None:
            self._first = t

    def add_closure(self, start: float, end: float, kind: str) -> None:
        self._closures.append((start, end, kind))

    def invalidate(self, t0: float, t1: float) -> None:
        """A span the state machine dropped as unknown: its time no longer counts as valid."""
        kept: deque[list[float]] = deque()
        for a, b in self._valid:
            if b <= t0 or a >= t1:
                kept.append([a, b])
                continue
            if a < t0:
                kept.append([a, t0])
            if b > t1:
                kept.append([t1, b])
        self._valid = kept

    def _prune(self, lo: float) -> None:
        while self._valid and self._valid[0][1] <= lo:
            self._valid.popleft()
        while self._closures and self._closures[0][1] <= lo:
            self._closures.popleft()

    def covered(self, now: float) -> tuple[float, float] | None:
        """(window start, valid seconds in the window), or None before the window is covered."""
        cfg = self.config
        lo = now - cfg.window
        if self._first is None or self._first > lo + 1e-9:
            return None
        self._prune(lo)
        valid = sum(_overlap(a, b, lo, now) for a, b in self._valid)
        if valid < cfg.min_coverage * cfg.window:
            return None
        return lo, valid

    def perclos(self, now: float, ongoing_start: float | None = None, ongoing_end: float | None = None) -> float | None:
        """Closed fraction of the valid time in (now - window, now]; the closure in progress counts up to
        ongoing_end (now by default)."""
        cover = self.covered(now)
        if cover is None:
            return None
        lo, valid = cover
        closed = sum(_overlap(s, e, lo, now) for s, e, _ in self._closures)
        if ongoing_start is not None:
            closed += _overlap(ongoing_start, now if ongoing_end is None else ongoing_end, lo, now)
        return min(1.0, closed / valid)

    def blinks_per_minute(self, now: float) -> float | None:
        cover = self.covered(now)
        if cover is None:
            return None
        lo, valid = cover
        count = sum(1 for _, e, kind in self._closures if e > lo and kind in (BLINK, LONG_BLINK))
        return count * 60.0 / valid

    def drowsy(self, now: float, perclos: float | None) -> tuple[bool, bool]:
        """(active, new) for the drowsy alarm, with hysteresis between drowsy_on and drowsy_off."""
        cfg = self.config
        if self.drowsy_since is None:
            if perclos is not None and perclos >= cfg.drowsy_on:
                self.drowsy_since = now
                return True, True
            return False, False
        if perclos is None or perclos < cfg.drowsy_off:
            self.drowsy_since = None
            return False, False
        return True, False
