"""Winks: one eye closed while the other stays open, then the closed one reopens.

Built on the per-eye filtered states, beside (not inside) the closure state machine: during a wink the fused state
stays open, so no blink is counted. A run of asymmetry that turns into both eyes closed, loses an eye, or lasts
outside [min_duration, max_duration] is not a wink and reports nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import StreamConfigError, check_range
from .values import CLOSED, OPEN, WINK, EyeEvent


@dataclass(frozen=True)
class WinkConfig:
    """Off by default, by measurement: on unseen MRL subjects playing no winks at all, per-eye flicker made ~250
    false winks per hour (``eyesdk-bench stream events``, winks_reported). Turn it on only with clean per-eye crops."""

    enabled: bool = False
    min_duration: float = 0.1
    max_duration: float = 1.0

    def __post_init__(self) -> None:
        check_range("WinkConfig", "min_duration", self.min_duration, 0.0)
        check_range("WinkConfig", "max_duration", self.max_duration, 0.0, lo_open=True)
        if self.min_duration > self.max_duration:
            raise StreamConfigError(
                f"WinkConfig.min_duration {self.min_duration} must not exceed max_duration {self.max_duration}"
            )


def closed_side(states: Mapping[str, str]) -> str | None:
    """The side whose eye is closed while the other is open, or None."""
    left, right = states.get("left"), states.get("right")
    if left == CLOSED and right == OPEN:
        return "left"
    if right == CLOSED and left == OPEN:
        return "right"
    return None


class WinkDetector:
    def __init__(self, config: WinkConfig | None = None) -> None:
        self.config = config or WinkConfig()
        self.reset()

    def reset(self) -> None:
        self.side: str | None = None  # the winking side of the run in progress
        self.start = 0.0

    def update(self, t: float, states: Mapping[str, str]) -> EyeEvent | None:
        if not self.config.enabled:
            return None
        side = closed_side(states)
        if side == self.side:
            return None
        event = None
        if self.side is not None and states.get("left") == OPEN and states.get("right") == OPEN:
            duration = t - self.start
            if self.config.min_duration <= duration <= self.config.max_duration:
                event = EyeEvent(WINK, self.start, t, side=self.side)
        self.side, self.start = side, t
        return event
