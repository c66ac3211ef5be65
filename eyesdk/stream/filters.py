"""Per-eye temporal filtering, hysteresis and the fusion of two eyes into one state per frame.

Scores are in the person's own units (``PersonLevels.predict_one``: +1 their open level, -1 their closed level).
Each eye's score is optionally smoothed (an exponential moving average with a time constant in seconds, so it means
the same at 15 and 60 fps), then held by hysteresis: closed below ``enter_closed``, open above ``exit_closed``, the
previous state in between. The fused score is the mean of the valid eyes' smoothed scores (one valid eye is enough;
none is unknown) and goes through its own hysteresis. The thresholds were set from measured per-frame logit noise of
real crops (docs/stream.md): noise that crosses the middle for a frame or two is what the state machine's
min_closure / min_reopen then absorbs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import StreamConfigError, check_range
from .values import CLOSED, OPEN, UNKNOWN


@dataclass(frozen=True)
class FilterConfig:
    smoothing: float = 0.0  # EMA time constant of each eye's score, seconds (0: none)
    enter_closed: float = -0.3  # score below which an open eye becomes closed
    exit_closed: float = 0.15  # score above which a closed eye becomes open
    reset_after: float = 0.5  # an eye unseen for longer starts its smoothing afresh

    def __post_init__(self) -> None:
        check_range("FilterConfig", "smoothing", self.smoothing, 0.0, 10.0)
        check_range("FilterConfig", "enter_closed", self.enter_closed, -2.0, 2.0)
        check_range("FilterConfig", "exit_closed", self.exit_closed, -2.0, 2.0)
        check_range("FilterConfig", "reset_after", self.reset_after, 0.0, lo_open=True)
        if self.enter_closed > self.exit_closed:
            raise StreamConfigError(
                f"FilterConfig.enter_closed {self.enter_closed} must not exceed exit_closed {self.exit_closed}"
            )


def hysteresis(previous: str, score: float | None, config: FilterConfig) -> str:
    """closed below enter_closed, open above exit_closed, the previous state in between (the sign if none)."""
    if score is None:
        return UNKNOWN
    if score < config.enter_closed:
        return CLOSED
    if score > config.exit_closed:
        return OPEN
    if previous == UNKNOWN:
        return CLOSED if score < 0.0 else OPEN
    return previous


class EyeFilter:
    """One eye's smoothing and hysteresis. ``update(score, t)`` -> (smoothed score or None, state)."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self.reset()

    def reset(self) -> None:
        self.smoothed: float | None = None
        self.state = UNKNOWN
        self._t: float | None = None

    def update(self, score: float | None, t: float) -> tuple[float | None, str]:
        cfg = self.config
        if score is None:
            if self._t is not None and t - self._t > cfg.reset_after:
                self.smoothed, self._t = None, None
            self.state = UNKNOWN
            return None, UNKNOWN
        if self.smoothed is None or cfg.smoothing == 0.0 or self._t is None:
            self.smoothed = score
        else:
            alpha = 1.0 - math.exp(-(t - self._t) / cfg.smoothing)
            self.smoothed += alpha * (score - self.smoothed)
        self._t = t
        self.state = hysteresis(self.state, self.smoothed, cfg)
        return self.smoothed, self.state


def fuse(scores: Sequence[float | None]) -> float | None:
    """Mean of the valid eyes' scores; None when no eye is valid."""
    valid = [s for s in scores if s is not None]
    if not valid:
        return None
    return sum(valid) / len(valid)
