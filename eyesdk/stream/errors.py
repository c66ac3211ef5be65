"""Named errors of the stream layer (each subclasses the built-in a caller would already catch)."""

from __future__ import annotations

from ..errors import EyeSDKError
from ..locators.errors import FrameError

__all__ = ["FrameError", "StreamClosedError", "StreamConfigError", "TimestampError", "VideoSourceError", "check_range"]


class TimestampError(EyeSDKError, ValueError):
    """A timestamp that is not a finite number of seconds, or not strictly after the previous one."""


class StreamClosedError(EyeSDKError, RuntimeError):
    """``update`` after ``close``: a closed stream has already completed its events."""


class VideoSourceError(EyeSDKError, OSError):
    """A video file or camera that cannot be opened, is corrupt, or stopped delivering frames."""


class StreamConfigError(EyeSDKError, ValueError):
    """A stream configuration value out of its allowed range (names the field, the value and the range)."""


def check_range(owner: str, name: str, value: float, lo: float, hi: float = float("inf"),
                lo_open: bool = False) -> None:
    """Raise StreamConfigError unless lo <= value <= hi (lo < value when lo_open) and value is a real number."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise StreamConfigError(f"{owner}.{name} = {value!r} is out of range; allowed {bracket}{lo}, {hi}]")
