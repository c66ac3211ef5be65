"""The closure state machine: per-frame fused eye states in, completed events and in-progress alarms out.

Visible on purpose: one enum of phases, one frozen state value, one transition function ``step`` and one config.

    OPEN ──closed──▶ CLOSED ──open──▶ REOPENING ──open for min_reopen──▶ OPEN   (event: start .. reopening)
      ▲                 ▲  ◀──closed── (bridged: a flicker open inside a closure does not split it)
      │                 └─ unknown for <= max_unknown: bridged
    UNKNOWN ◀── unknown for > max_unknown, or a gap between updates > max_gap: the closure is dropped, no event

A closure is only confirmed (reported, alarmed, counted in PERCLOS) once the fused score went at least
``confirm_depth`` towards the person's closed level: measured on real crops, frames that cross the middle by noise
stay shallow, real closures sit at the closed level. A closure is its core (frames at least ``core_depth`` deep):
shallow runs longer than ``max_shallow`` before or after the core are not part of it, and ``max_bridge`` without
core frames ends it — measured on glasses subjects, open eyes scored just below the boundary next to a real blink
otherwise stretched it into a false microsleep (docs/stream.md). Time is only ever read from the timestamps handed
in (cameras drop frames; files have variable frame rates). A closure's kind is chosen once, from its total duration,
when it ends; while it lasts, alarms escalate from microsleep (>= 1 s) to sleep (>= 3 s) so a warning comes at 1 s,
not when the eyes reopen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

from .errors import StreamConfigError, check_range
from .values import BLINK, CLOSED, LONG_BLINK, MICROSLEEP, OPEN, SLEEP, UNKNOWN, EyeEvent


class Phase(Enum):
    OPEN = "open"
    CLOSED = "closed"
    REOPENING = "reopening"  # open seen inside a closure, not yet for min_reopen
    UNKNOWN = "unknown"


IN_CLOSURE = (Phase.CLOSED, Phase.REOPENING)


@dataclass(frozen=True)
class EventConfig:
    """Thresholds of the state machine, in seconds.

    Closures shorter than min_closure are dropped as noise; open runs shorter than min_reopen inside a closure are
    bridged (a slow blink is one blink, not two); unseen eyes (no usable crop) for longer than max_unknown inside a
    closure, or a gap between updates longer than max_gap, end the closure as unknown: no event is invented.
    """

    long_blink_from: float = 0.5
    microsleep_from: float = 1.0
    sleep_from: float = 3.0
    min_closure: float = 0.05
    min_reopen: float = 0.05
    max_unknown: float = 0.3
    max_gap: float = 0.5
    confirm_depth: float = 0.7  # a closure counts once the fused score reached -confirm_depth (person units)
    core_depth: float = 0.5  # frames at least this deep (person units) are a closure's core ...
    max_shallow: float = 0.25  # ... and shallower runs longer than this at its start or end are not part of it
    max_bridge: float = 0.25  # a closure ends after this long without core frames (>= max_shallow)

    def __post_init__(self) -> None:
        for name in ("long_blink_from", "microsleep_from", "sleep_from", "max_gap"):
            check_range("EventConfig", name, getattr(self, name), 0.0, lo_open=True)
        for name in ("min_closure", "min_reopen", "max_unknown"):
            check_range("EventConfig", name, getattr(self, name), 0.0)
        check_range("EventConfig", "confirm_depth", self.confirm_depth, -2.0, 2.0)
        check_range("EventConfig", "core_depth", self.core_depth, -2.0, self.confirm_depth)  # confirmed => a core
        check_range("EventConfig", "max_shallow", self.max_shallow, 0.0, lo_open=True)
        check_range("EventConfig", "max_bridge", self.max_bridge, self.max_shallow)
        if not self.long_blink_from < self.microsleep_from < self.sleep_from:
            raise StreamConfigError(
                f"EventConfig thresholds must increase: long_blink_from {self.long_blink_from} < microsleep_from "
                f"{self.microsleep_from} < sleep_from {self.sleep_from}"
            )

    def kind_of(self, duration: float) -> str:
        """blink (< long_blink_from), long_blink (< microsleep_from), microsleep (< sleep_from), else sleep."""
        if duration < self.long_blink_from:
            return BLINK
        if duration < self.microsleep_from:
            return LONG_BLINK
        if duration < self.sleep_from:
            return MICROSLEEP
        return SLEEP

    def alarm_of(self, closed_for: float) -> str | None:
        """The alarm an ongoing closure of this length raises: None, microsleep or sleep."""
        if closed_for >= self.sleep_from:
            return SLEEP
        if closed_for >= self.microsleep_from:
            return MICROSLEEP
        return None


@dataclass(frozen=True)
class MachineState:
    """Everything the machine remembers. start: the closure's first closed frame; reopened_at: the first open frame
    of a reopening; seen_at: the last frame with a usable eye; alarm: the highest alarm this closure raised."""

    phase: Phase = Phase.UNKNOWN
    last_t: float | None = None
    seen_at: float | None = None
    start: float | None = None
    reopened_at: float | None = None
    clipped_start: bool = False
    alarm: str | None = None
    deepest: float = 0.0  # lowest fused score seen in this closure
    core_start: float | None = None  # first frame at least core_depth deep
    core_end: float | None = None  # last such frame
    after_core: float | None = None  # first frame after core_end: the start of the shallow run since

    def confirmed(self, config: EventConfig) -> bool:
        return self.deepest <= -config.confirm_depth

    def onset(self, config: EventConfig) -> float:
        """Where the closure begins: its first closed frame, or its core when a longer shallow run led to it."""
        if self.core_start is not None and self.core_start - self.start > config.max_shallow:
            return self.core_start
        return self.start

    def end_at(self, end: float, config: EventConfig) -> float:
        """Where a closure ending at ``end`` ends: there, or at its core's end when a longer shallow run followed."""
        if self.after_core is not None and end - self.after_core > config.max_shallow:
            return self.after_core
        return end

    def span(self, config: EventConfig, end: float | None = None) -> tuple[float, float]:
        """(start, end) of the event this closure is, ending at ``end`` (default: now, or where it began to
        reopen): what the event, its alarm and PERCLOS all count."""
        if end is None:
            end = self.reopened_at if self.phase is Phase.REOPENING else self.last_t
        return self.onset(config), self.end_at(end, config)

    def shallow_for(self, t: float) -> float:
        """Seconds since the closure's core ended (0 while in it or before it)."""
        return 0.0 if self.after_core is None else t - self.after_core

    def at_depth(self, depth: float, t: float, config: EventConfig, **changes: object) -> MachineState:
        """This closure after a frame at ``depth`` (person units; inf for an open or unseen frame) at time t: its
        core and the shallow run since, with ``changes`` applied in the same copy."""
        if depth <= -config.core_depth:
            changes.update(core_start=t if self.core_start is None else self.core_start, core_end=t, after_core=None)
        elif self.core_end is not None and self.after_core is None:
            changes["after_core"] = t
        return replace(self, **changes) if changes else self


@dataclass(frozen=True)
class Step:
    """One transition's result: the new state, the event completed by it (if any) and the ongoing alarm."""

    state: MachineState
    event: EyeEvent | None = None
    alarm: str | None = None
    alarm_new: bool = False
    # How a closure in progress ended at this step, for the stages that learn from or count closures: "event" (it
    # became ``event``), "noise" (too short or never deep enough: its frames were open eyes) or "unknown" (dropped
    # by a gap or unseen eyes: nothing about it is known); None when no closure ended.
    ended: str | None = None


def _dropped(state: MachineState, t: float) -> MachineState:
    """The closure (if any) ends as unknown: nothing is reported for it."""
    return MachineState(Phase.UNKNOWN, last_t=t, seen_at=state.seen_at)


def _event(state: MachineState, end: float, config: EventConfig, clipped: bool = False) -> EyeEvent | None:
    start, end = state.span(config, end)
    duration = end - start
    if duration < config.min_closure or not state.confirmed(config):
        return None
    return EyeEvent(config.kind_of(duration), start, end, clipped=clipped or state.clipped_start)


def _with_alarm(state: MachineState, config: EventConfig, event: EyeEvent | None = None) -> Step:
    """Attach the ongoing alarm of a closure in progress (escalation makes it new)."""
    if state.phase not in IN_CLOSURE or not state.confirmed(config):
        return Step(state, event)
    start, end = state.span(config)
    alarm = config.alarm_of(end - start)
    if alarm is None:
        return Step(state, event)
    new = alarm != state.alarm
    return Step(replace(state, alarm=alarm) if new else state, event, alarm, new)


def step(state: MachineState, observed: str, t: float, config: EventConfig, score: float | None = None) -> Step:
    """Advance the machine by one frame: ``observed`` is the fused state ("open", "closed", "unknown") at time t,
    ``score`` the fused score behind it (person units; None counts as deep enough, for state-only callers).

    The caller guarantees t is finite and strictly increasing (EyeStream checks it).
    """
    if state.last_t is not None and t - state.last_t > config.max_gap:  # a hole: whatever was going on is unknown
        in_closure = state.phase in IN_CLOSURE
        result = _advance(_dropped(state, state.last_t), observed, t, config, score)
        return replace(result, ended="unknown") if in_closure else result
    return _advance(state, observed, t, config, score)


def _advance(state: MachineState, observed: str, t: float, config: EventConfig, score: float | None) -> Step:
    depth = -math.inf if score is None else score
    seen = observed != UNKNOWN
    seen_at = t if seen else state.seen_at
    phase = state.phase

    if phase in (Phase.OPEN, Phase.UNKNOWN):
        if observed == CLOSED:
            clipped = phase is Phase.UNKNOWN  # the closure may have begun while the eyes were not seen
            closure = MachineState(Phase.CLOSED, t, seen_at, start=t, clipped_start=clipped, deepest=depth)
            return _with_alarm(closure.at_depth(depth, t, config), config)
        return Step(MachineState(Phase.OPEN if observed == OPEN else Phase.UNKNOWN, t, seen_at))

    # In a closure (CLOSED or REOPENING).
    if not seen:
        if state.seen_at is None or t - state.seen_at > config.max_unknown:
            return Step(_dropped(state, t), ended="unknown")
        # bridged: a few unusable frames (not core: they count towards the shallow run after a core)
        return _with_alarm(state.at_depth(math.inf, t, config, last_t=t), config)
    if observed == CLOSED:
        state = state.at_depth(depth, t, config, phase=Phase.CLOSED, last_t=t, seen_at=t, reopened_at=None,
                               deepest=min(state.deepest, depth))
        if state.shallow_for(t) > config.max_bridge:  # closed by hysteresis, but too shallow for too long
            event = _event(state, t, config)
            return Step(MachineState(Phase.OPEN, t, t), event, ended="noise" if event is None else "event")
        return _with_alarm(state, config)
    # observed open
    state = state.at_depth(math.inf, t, config)
    if phase is Phase.CLOSED:
        reopening = replace(state, phase=Phase.REOPENING, last_t=t, seen_at=t, reopened_at=t)
        if config.min_reopen > 0.0:
            return _with_alarm(reopening, config)
        state = reopening
    if t - state.reopened_at >= config.min_reopen:
        event = _event(state, state.reopened_at, config)
        return Step(MachineState(Phase.OPEN, t, t), event, ended="noise" if event is None else "event")
    return _with_alarm(replace(state, last_t=t, seen_at=t), config)


def finish(state: MachineState, config: EventConfig) -> EyeEvent | None:
    """Complete the closure in progress at the end of a stream (``EyeStream.close``)."""
    if state.phase is Phase.REOPENING:
        return _event(state, state.reopened_at, config)
    if state.phase is Phase.CLOSED:  # clipped: its end was not seen, unless a long shallow run had ended its core
        return _event(state, state.last_t, config, clipped=state.end_at(state.last_t, config) == state.last_t)
    return None
