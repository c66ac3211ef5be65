"""Scripted ground-truth timelines of eye closures: awake spells with realistic blinks, drowsy spells with long
blinks, microsleeps and sleep; frame times at a nominal rate with optional jitter and dropped frames.

Numbers follow the blink literature the issue cites: blinks 100-400 ms every few seconds when awake (15/min on
average); when drowsy, blinks come more often and last longer, with long blinks (0.5-1 s), microsleeps (1-3 s) and
the odd sleep episode (>= 3 s). Everything is drawn from one seeded generator, so a timeline is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AWAKE, DROWSY = "awake", "drowsy"


@dataclass(frozen=True)
class Closure:
    start: float
    end: float
    kind: str  # blink | long_blink | microsleep | sleep (by duration, as the stream names them)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Spell:
    start: float
    end: float
    mode: str  # awake | drowsy


@dataclass(frozen=True)
class Timeline:
    duration: float
    closures: tuple[Closure, ...]
    spells: tuple[Spell, ...]

    def closed_at(self, times: np.ndarray) -> np.ndarray:
        """True where a frame time falls inside a closure [start, end)."""
        closed = np.zeros(len(times), dtype=bool)
        starts = np.array([c.start for c in self.closures])
        ends = np.array([c.end for c in self.closures])
        if len(starts):
            i = np.searchsorted(starts, times, side="right") - 1
            ok = i >= 0
            closed[ok] = times[ok] < ends[i[ok]]
        return closed

    def closed_seconds(self, lo: float, hi: float) -> float:
        return sum(max(0.0, min(c.end, hi) - max(c.start, lo)) for c in self.closures)

    def awake_seconds(self) -> float:
        return sum(s.end - s.start for s in self.spells if s.mode == AWAKE)

    def mode_at(self, t: float) -> str:
        for s in self.spells:
            if s.start <= t < s.end:
                return s.mode
        return AWAKE


def kind_of(duration: float) -> str:
    """The stream's default kind boundaries (EventConfig): one definition, read from there."""
    from eyesdk.stream.events import EventConfig

    return EventConfig().kind_of(duration)


def _closures(rng: np.random.Generator, lo: float, hi: float, mode: str) -> list[Closure]:
    out = []
    t = lo + rng.uniform(0.5, 3.0)
    while True:
        if mode == AWAKE:
            duration = rng.uniform(0.5, 0.95) if rng.random() < 0.05 else rng.uniform(0.1, 0.4)
            gap = rng.uniform(2.0, 6.0)
        else:
            r = rng.random()
            if r < 0.06:
                duration = rng.uniform(3.0, 6.0)  # sleep
            elif r < 0.18:
                duration = rng.uniform(1.05, 2.9)  # microsleep
            elif r < 0.45:
                duration = rng.uniform(0.5, 0.95)  # long blink
            else:
                duration = rng.uniform(0.15, 0.45)
            gap = rng.uniform(1.0, 4.0)
        if t + duration + 0.5 > hi:
            return out
        out.append(Closure(t, t + duration, kind_of(duration)))
        t += duration + gap


def script(minutes_awake: float, minutes_drowsy: float, seed: int = 0, spell_minutes: float = 5.0) -> Timeline:
    """Awake and drowsy spells alternating (awake first), ``spell_minutes`` of awake between drowsy spells."""
    rng = np.random.default_rng(seed)
    total = 60.0 * (minutes_awake + minutes_drowsy)
    drowsy_left = 60.0 * minutes_drowsy
    awake_left = 60.0 * minutes_awake
    spells, closures = [], []
    t = 0.0
    n_drowsy = max(1, round(minutes_awake / spell_minutes)) if minutes_drowsy > 0 else 0
    drowsy_each = drowsy_left / n_drowsy if n_drowsy else 0.0
    while t < total - 1e-6:
        if awake_left > 1e-6:
            length = min(awake_left, 60.0 * spell_minutes) if drowsy_left > 1e-6 else awake_left
            spells.append(Spell(t, t + length, AWAKE))
            awake_left -= length
            t += length
        if drowsy_left > 1e-6:
            length = min(drowsy_left, drowsy_each)
            spells.append(Spell(t, t + length, DROWSY))
            drowsy_left -= length
            t += length
    for spell in spells:
        closures += _closures(rng, spell.start, spell.end, spell.mode)
    return Timeline(total, tuple(closures), tuple(spells))


def frame_times(duration: float, fps: float = 30.0, jitter: float = 0.0, drop: float = 0.0,
                seed: int = 0) -> np.ndarray:
    """Increasing frame times: nominal 1/fps steps, each jittered by up to ``jitter`` of a step, a fraction
    ``drop`` of frames dropped (as cameras do under load)."""
    rng = np.random.default_rng(seed + 1)
    n = int(duration * fps)
    times = np.arange(n) / fps
    if jitter:
        times = times + rng.uniform(-jitter, jitter, n) / fps * 0.5
    if drop:
        times = times[rng.random(n) >= drop]
    return np.maximum.accumulate(times + np.arange(len(times)) * 1e-9)
