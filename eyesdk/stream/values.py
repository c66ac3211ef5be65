"""The values a stream hands out: frozen dataclasses, so user code can keep, compare and log them freely.

``StreamUpdate`` is what ``EyeStream.update`` returns for every frame; ``EyeEvent`` is one completed closure (or
wink); ``Alarm`` is an ongoing warning; ``EyeObservation`` is what was seen of one eye in this frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OPEN, CLOSED, UNKNOWN = "open", "closed", "unknown"
STATES = (OPEN, CLOSED, UNKNOWN)

# Event kinds: a closure's kind is chosen by its total duration (EventConfig thresholds); a wink is one eye only.
BLINK, LONG_BLINK, MICROSLEEP, SLEEP, WINK = "blink", "long_blink", "microsleep", "sleep", "wink"
EVENT_KINDS = (BLINK, LONG_BLINK, MICROSLEEP, SLEEP, WINK)
# Alarm kinds: raised while a closure is still going on (microsleep, sleep) or from PERCLOS (drowsy).
DROWSY = "drowsy"
ALARM_KINDS = (MICROSLEEP, SLEEP, DROWSY)


def _rounded(data: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in data.items()}


@dataclass(frozen=True, slots=True)
class EyeObservation:
    """One eye in one frame.

    side: "left" / "right" as seen in the image (the person's right eye is on the image's left for an unmirrored
    camera), or "eye" for a single crop given without a locator. box: the crop's axis-aligned bounds in the frame
    (x, y, width, height), None for crops the caller handed over. valid: the crop passed the quality gate and was
    classified; otherwise reason says why not ("no_eye", "too_small", "off_frame", "underexposed", "overexposed",
    "low_contrast", "blurred", "glare"). prob_open: the model's calibrated P(open). logit: the calibrated logit
    (raw logit / temperature). score: the logit in this person's own units after adaptation (+1 = their open level,
    -1 = their closed level, 0 = halfway). state: this eye's filtered state.
    """

    side: str
    valid: bool
    state: str
    reason: str | None = None
    box: tuple[int, int, int, int] | None = None
    prob_open: float | None = None
    logit: float | None = None
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = _rounded(asdict(self))
        data["box"] = list(self.box) if self.box is not None else None
        return data


@dataclass(frozen=True, slots=True)
class EyeEvent:
    """A completed event: a closure of both eyes (blink, long_blink, microsleep, sleep) or a wink of one eye.

    start/end are stream timestamps in seconds (the first closed frame and the first frame of the reopening that
    ended it); duration = end - start. side is "left"/"right" for a wink, None for a closure. clipped is True when a
    boundary was not seen directly: the closure was still going on at ``close()``, or began right after the eyes
    were unknown (so its start, and its kind, are lower bounds).
    """

    kind: str
    start: float
    end: float
    side: str | None = None
    clipped: bool = False

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return _rounded({**asdict(self), "duration": self.duration})


@dataclass(frozen=True, slots=True)
class Alarm:
    """An ongoing warning. kind: "microsleep" (eyes closed >= 1 s so far), "sleep" (>= 3 s) or "drowsy" (PERCLOS
    over the trailing window at or above its threshold). since: when the condition began (the closure's start for
    closures). new: True only at the update that first raised it."""

    kind: str
    since: float
    new: bool

    def to_dict(self) -> dict[str, Any]:
        return _rounded(asdict(self))


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """What one ``update(frame, timestamp)`` produced.

    state: the fused state of the eyes ("unknown" when no eye was usable: never reported as closed). events: events
    COMPLETED at this update. alarms: warnings active at this update. perclos: fraction of the valid time in the
    trailing window during which the eyes were closed, None until the window is covered. blinks_per_minute:
    blinks and long blinks per minute of valid time in the window, None until covered.
    """

    timestamp: float
    state: str
    eyes: tuple[EyeObservation, ...]
    events: tuple[EyeEvent, ...] = ()
    alarms: tuple[Alarm, ...] = ()
    perclos: float | None = None
    blinks_per_minute: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": round(self.timestamp, 6),
            "state": self.state,
            "eyes": [e.to_dict() for e in self.eyes],
            "events": [e.to_dict() for e in self.events],
            "alarms": [a.to_dict() for a in self.alarms],
            "perclos": None if self.perclos is None else round(self.perclos, 6),
            "blinks_per_minute": None if self.blinks_per_minute is None else round(self.blinks_per_minute, 4),
        }
