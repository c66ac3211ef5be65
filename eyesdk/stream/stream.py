"""``EyeStream``: camera frames (or eye crops) in, eye states, events, alarms, PERCLOS and blink rate out.

The pipeline, one small stage each, composed in ``update`` in this order:

    locate (eyesdk.locators) -> crop (crop recipe) -> quality gate -> classify (EyeState.logits, both eyes at once)
    ->  adapt (PersonLevels per eye)  ->  filter + hysteresis per eye  ->  fuse  ->  closure state machine (events,
    alarms)  ->  trailing window (PERCLOS, blinks/min, drowsy)  +  winks

Time is the caller's ``timestamp`` (seconds, strictly increasing), never the wall clock: a stream replays the same way
from a file, a camera or a synthetic trace. Needs numpy and one runtime backend; no OpenCV (that comes with the
``stream`` extra for video IO and the Haar fallback locator).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ..api import EyeState
from ..bundle import Bundle
from ..locators import Locator, make_locator
from ..locators.base import SIDES, as_frame
from ..locators.crop import crop_eye
from ..metrics import sigmoid
from .adaptation import DecisionLabels, LevelsState, PersonLevels, Sample
from .classify import CropClassifier
from .config import StreamConfig
from .errors import FrameError, StreamClosedError, TimestampError
from .events import IN_CLOSURE, MachineState, Phase, Step, finish, step
from .filters import EyeFilter, fuse, hysteresis
from .quality import TOO_SMALL, crop_stats, judge
from .values import DROWSY, UNKNOWN, Alarm, EyeEvent, EyeObservation, StreamUpdate
from .window import TrailingWindow
from .winks import WinkDetector

SINGLE = "eye"  # the side name of a lone crop given without a locator
NO_EYE = "no_eye"
_Seen = tuple[str, Any, "tuple[int, int, int, int] | None", float, float]  # side, pixels | None, box, side px, inside


class _Measured(NamedTuple):
    """One eye after the gate and the classifier: the calibrated logit, or the reason there is none."""

    side: str
    box: tuple[int, int, int, int] | None
    reason: str | None
    logit: float | None


class EyeStream:
    """Eye state over time for one person.

    Args:
        locator: "auto" (the landmark locator when its models are fetched, else the Haar fallback), "mediapipe",
            "haar", a ``Locator`` object (e.g. ``FixedRegionLocator``), or None: every frame IS an eye crop (IR
            eye cameras, head-mounted cameras, crops from the caller's own detector) or a (left, right) pair of
            crops, either of which may be None.
        model, backend, precision: as for ``EyeState`` (ignored when ``eye_state`` is given).
        config: every threshold of every stage (``StreamConfig``).
        color: channel order of 3-channel frames and crops, "bgr" (OpenCV) or "rgb".
        eye_state: an existing classifier to share.
    """

    def __init__(
        self,
        locator: str | Locator | None = "auto",
        model: str | os.PathLike[str] | Bundle | None = None,
        *,
        backend: str = "auto",
        precision: str = "auto",
        config: StreamConfig | None = None,
        color: str = "bgr",
        eye_state: EyeState | None = None,
    ) -> None:
        if config is not None and not isinstance(config, StreamConfig):
            raise TypeError(f"config must be a StreamConfig, got {type(config).__name__}")
        self.config = config or StreamConfig()
        if eye_state is None:
            eye_state = EyeState(model=model, backend=backend, precision=precision, color=color)
        self.classifier = CropClassifier(eye_state)
        self.locator: Locator | None = make_locator(locator, color=color) if locator is not None else None
        self.reset()

    # -- state ------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Start over: a new person, a new recording (the locator's tracking state is reset too)."""
        cfg = self.config
        self.levels: dict[str, PersonLevels] = {}
        self._filters: dict[str, EyeFilter] = {}
        self._fused = UNKNOWN
        self._machine = MachineState()
        self._window = TrailingWindow(cfg.window)
        self._winks = WinkDetector(cfg.winks)
        self._labels = DecisionLabels(cfg.adaptation.max_pending)
        self._last_t: float | None = None
        self._closed = False
        if self.locator is not None:
            self.locator.reset()

    def person(self) -> dict[str, LevelsState]:
        """What the adaptation has learned so far, per eye side."""
        return {side: levels.state() for side, levels in self.levels.items()}

    def _eye_stages(self, side: str) -> tuple[PersonLevels, EyeFilter]:
        try:
            return self.levels[side], self._filters[side]
        except KeyError:
            self.levels[side] = PersonLevels(self.config.adaptation, self.classifier.midpoint)
            self._filters[side] = EyeFilter(self.config.filter)
            return self.levels[side], self._filters[side]

    # -- the pipeline -----------------------------------------------------------------------------------------

    def update(self, frame: Any, timestamp: float) -> StreamUpdate:
        """Process one frame taken at ``timestamp`` seconds (strictly after the previous one)."""
        t = self._check_time(timestamp)
        seen = self._locate_and_crop(frame) if self.locator is not None else self._given_crops(frame)
        return self._track(self._measure(seen), t)

    def update_logits(self, logits: Mapping[str, float | None], timestamp: float) -> StreamUpdate:
        """The same from a classifier of your own: calibrated logits (log-odds of open) per side ("left", "right",
        or "eye" for one eye), None for an eye that was not usable."""
        t = self._check_time(timestamp)
        if not isinstance(logits, Mapping) or not logits or not set(logits) <= {*SIDES, SINGLE}:
            raise FrameError(f"logits must map 'left'/'right' (or 'eye') to a float or None, got {logits!r}")
        measured = []
        for side, z in logits.items():
            if z is not None and (isinstance(z, bool) or not isinstance(z, (int, float, np.floating))
                                  or not math.isfinite(z)):
                raise FrameError(f"the {side} logit must be a finite number or None, got {z!r}")
            measured.append(_Measured(side, None, NO_EYE if z is None else None, None if z is None else float(z)))
        return self._track(measured, t)

    def _track(self, measured: list[_Measured], t: float) -> StreamUpdate:
        """Everything after the classifier: adapt, filter, fuse, the state machine, the window, winks."""
        dt = 0.0 if self._last_t is None else min(t - self._last_t, self.config.events.max_gap)
        eyes, scores = self._follow(measured, t)

        fused_score = fuse(scores)
        self._fused = hysteresis(self._fused, fused_score, self.config.filter)
        before = self._machine
        result = step(before, self._fused, t, self.config.events, fused_score)
        self._machine = machine = result.state
        self._learn(result, [(e.side, e.logit, dt, e.score) for e in eyes if e.valid])

        window = self._window
        window.start(t)
        if self._fused != UNKNOWN and self._last_t is not None and t - self._last_t <= self.config.events.max_gap:
            window.add_valid(self._last_t, t)
        if result.event is not None:
            window.add_closure(result.event.start, result.event.end, result.event.kind)
        elif result.ended == "unknown":
            window.invalidate(before.start, t)  # the closure was dropped as unknown: its time was not valid
        confirmed = machine.phase in IN_CLOSURE and machine.confirmed(self.config.events)
        onset, ongoing_end = machine.span(self.config.events) if confirmed else (None, None)  # the event's own span
        perclos = window.perclos(t, onset, ongoing_end)

        alarms = []
        if result.alarm is not None:
            alarms.append(Alarm(result.alarm, onset, result.alarm_new))
        drowsy, new = window.drowsy(t, perclos)
        if drowsy:
            alarms.append(Alarm(DROWSY, window.drowsy_since, new))
        events = [result.event] if result.event is not None else []
        if len(eyes) == 2:
            wink = self._winks.update(t, {eye.side: eye.state for eye in eyes})
            if wink is not None:
                events.append(wink)
        self._last_t = t
        return StreamUpdate(t, self._fused, eyes, tuple(events), tuple(alarms), perclos,
                            window.blinks_per_minute(t))

    def close(self) -> list[EyeEvent]:
        """End the stream: the closure still in progress (if any) is completed, marked clipped, and returned."""
        if self._closed:
            return []
        self._closed = True
        event = finish(self._machine, self.config.events)
        return [event] if event is not None else []

    # -- stages -----------------------------------------------------------------------------------------------

    def _check_time(self, timestamp: Any) -> float:
        if self._closed:
            raise StreamClosedError("this stream was closed; call reset() to start a new one")
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float, np.integer, np.floating)):
            raise TimestampError(f"timestamp must be a number of seconds, got {type(timestamp).__name__}")
        t = float(timestamp)
        if not math.isfinite(t):
            raise TimestampError(f"timestamp must be finite, got {t}")
        if self._last_t is not None and t <= self._last_t:
            raise TimestampError(
                f"timestamps must increase strictly: got {t!r} after {self._last_t!r} (seconds, e.g. from the "
                "camera or the video's frame times, never frame counts of a variable-rate source)"
            )
        return t

    def _locate_and_crop(self, frame: Any) -> list[_Seen]:
        frame = as_frame(frame)
        found = {}
        for eye in self.locator.locate(frame):
            found.setdefault(eye.side, eye)
        seen: list[_Seen] = []
        for side in SIDES:
            eye = found.get(side)
            if eye is None:
                seen.append((side, None, None, 0.0, 0.0))
                continue
            crop = crop_eye(frame, eye, self.config.crop)
            seen.append((side, crop.pixels, crop.box, crop.side_px, crop.inside))
        return seen

    def _given_crops(self, frame: Any) -> list[_Seen]:
        if isinstance(frame, np.ndarray):
            items: tuple[tuple[str, Any], ...] = ((SINGLE, frame),)
        elif isinstance(frame, (tuple, list)) and len(frame) == 2:
            items = tuple(zip(SIDES, frame, strict=True))
        else:
            raise FrameError(
                "without a locator a frame is one eye crop (a numpy array) or a (left, right) pair of crops, each a "
                f"numpy array or None; got {type(frame).__name__}"
                + (f" of length {len(frame)}" if isinstance(frame, (tuple, list)) else "")
            )
        seen: list[_Seen] = []
        for side, crop in items:
            if crop is None:
                seen.append((side, None, None, 0.0, 0.0))
                continue
            if not isinstance(crop, np.ndarray) or crop.ndim not in (2, 3):
                raise FrameError(
                    f"the {side} crop must be a numpy array H x W or H x W x C, got "
                    f"{crop.shape if isinstance(crop, np.ndarray) else type(crop).__name__}"
                )
            seen.append((side, crop, None, float(min(crop.shape[:2])), 1.0))
        return seen

    def _measure(self, seen: list[_Seen]) -> list[_Measured]:
        """Gate every crop, then classify the usable ones in one batch."""
        quality = self.config.quality
        out, resized = [], []
        for side, pixels, box, side_px, inside in seen:
            reason = NO_EYE if pixels is None else None
            if reason is None:
                prepared = self.classifier.prepare(pixels)
                if prepared is None:
                    reason = TOO_SMALL
                else:
                    grey, small = prepared
                    reason = judge(crop_stats(grey, small), side_px, inside, quality)
                    if reason is None:
                        resized.append(small)
            out.append(_Measured(side, box, reason, None))
        logits = iter(self.classifier.logits(resized))
        return [m if m.reason is not None else m._replace(logit=next(logits)) for m in out]

    def _learn(self, result: Step, samples: list[Sample]) -> None:
        """Teach each eye's PersonLevels with the machine's own decision about this frame (predict, then learn)."""
        machine = result.state
        events = self.config.events
        in_closure = machine.phase in IN_CLOSURE
        for (side, z, seconds, score), closed in self._labels.label(
            samples, in_closure, machine.start, in_closure and machine.confirmed(events),
            machine.phase is Phase.REOPENING, machine.phase is Phase.OPEN, result.ended,
        ):
            if closed and score > -events.core_depth:
                continue  # a confirmed closure teaches the closed level with its core frames only
            self.levels[side].learn_one(z, seconds, not closed)

    def _follow(self, measured: list[_Measured], t: float) -> tuple[tuple[EyeObservation, ...], list[float]]:
        """Score (in the person's units) and filter every eye; returns the observations and the valid scores."""
        valid = [m.logit for m in measured if m.logit is not None]
        probs = iter(sigmoid(valid).tolist() if valid else ())
        eyes, scores = [], []
        for side, box, reason, z in measured:
            levels, eye_filter = self._eye_stages(side)
            if z is None:
                eye_filter.update(None, t)
                eyes.append(EyeObservation(side, False, UNKNOWN, reason, box))
                continue
            score = levels.predict_one(z)
            smoothed, state = eye_filter.update(score, t)
            scores.append(smoothed)
            eyes.append(EyeObservation(side, True, state, None, box, next(probs), z, smoothed))
        return tuple(eyes), scores


def stream_config_of(sections: Any) -> StreamConfig:
    """A StreamConfig from parsed JSON ``{section: {field: value}}`` (``eyesdk watch --config``, the benchmarks'
    ``--sweep`` variants); TypeError / ValueError name what is wrong."""
    if not isinstance(sections, dict):
        raise TypeError('expected a JSON object of sections, e.g. \'{"events": {"confirm_depth": 0.7}}\'')
    return stream_config(**sections)


def stream_config(**sections: Mapping[str, Any]) -> StreamConfig:
    """A StreamConfig with some fields of some sections changed: ``stream_config(events={"max_gap": 1.0})``."""
    from dataclasses import fields, replace

    base = StreamConfig()
    names = {f.name for f in fields(StreamConfig)}
    unknown = [name for name in sections if name not in names]
    if unknown:
        raise TypeError(f"unknown StreamConfig section(s) {unknown}; sections are {sorted(names)}")
    if not all(isinstance(values, Mapping) for values in sections.values()):
        raise TypeError('each section is an object of fields, e.g. \'{"events": {"confirm_depth": 0.7}}\'')
    return replace(base, **{name: replace(getattr(base, name), **dict(values)) for name, values in sections.items()})
