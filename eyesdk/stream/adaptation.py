"""Online, label-free adaptation to one person: their own open and closed logit levels and the boundary between.

A stream sees one person for minutes. A fixed threshold fails on exactly the people who matter (glasses, glints,
narrow eyes): measured with the default model (``eyesdk-bench stream noise``), one unseen MRL subject's OPEN eyes have
a median calibrated logit of +1.1 with 31 % of frames below the fixed threshold 0, two training subjects' CLOSED eyes
sit at -0.3 (48 % and 40 % of their closed frames above 0), while typical levels are +5 / -6.

``PersonLevels`` is a river-style online estimator (``learn_one`` / ``predict_one`` / ``state``) of one eye's two
levels. It never sees a label: the stream teaches it with its OWN decisions (decision-directed learning, the classic
label-free adaptation of a receiver): the core frames of confirmed closures are "closed", frames of open periods and
of flickers the state machine dropped as noise are "open" (``DecisionLabels``; the stream skips a closure's shallow
frames). Each class keeps a histogram of calibrated logits (bins of 0.25 s of evidence each) that fades with a
half-life, so the estimate follows the person (and the light) over minutes, plus a prior bump worth ``prior_seconds``
that never fades, so someone who has not blinked yet keeps a sensible closed level; until ``bootstrap_seconds`` of
closures were confirmed, that closed prior moves up to the person's open outliers when they sit shallower (someone
whose closed eyes score shallower than the prior would otherwise never be confirmed, and never teach it). The levels
are the classes' weighted medians (robust to long tails), the boundary is halfway between them, bounded to [prior -
max_down, prior + max_up]. ``predict_one`` maps a logit into the person's units: +1 at their open level, -1 at their
closed level, 0 at the boundary (the units of the hysteresis and confirmation thresholds).

Why decisions and not an unsupervised two-cluster fit, measured on real crops (docs/stream.md): awake eyes are closed
~5 % of the time and open logits often have a long low tail, so every unsupervised fit tried (a Gaussian mixture,
two-medians, a Laplace-mixture EM) sooner or later cut the OPEN cluster in two and put the boundary inside it (one
subject: F1 0.99 -> 0.25). The stream's decisions know which frames belong to a blink from time, not from the logit.
``enabled=False`` freezes the estimator at the prior, whose boundary is the bundle's own decision threshold: the
fixed-threshold baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import check_range

_BIN = 0.25
_LIMIT = 20.0
_EDGES = np.arange(-_LIMIT, _LIMIT + _BIN / 2, _BIN)
_CENTRES = (_EDGES[:-1] + _BIN / 2).astype(np.float64)
_NBINS = len(_CENTRES)
OPEN_CLASS, CLOSED_CLASS = 0, 1


@dataclass(frozen=True)
class AdaptationConfig:
    """Levels are relative to the bundle's decision threshold, in calibrated-logit units (0 for threshold 0.5)."""

    enabled: bool = True
    prior_separation: float = 11.0  # open level - closed level of a typical person
    prior_scale: float = 1.5  # width of each prior bump (Laplace)
    prior_seconds: float = 2.0  # weight of each class's prior, in seconds of observation
    half_life: float = 300.0  # seconds after which old evidence counts half
    refresh: float = 0.5  # recompute the levels after this many seconds of new evidence
    max_down: float = 5.0  # the boundary may sink this far below the prior's
    max_up: float = 3.0  # ... and rise this far above it
    min_separation: float = 2.0
    max_pending: float = 10.0  # seconds of a not-yet-confirmed closure kept for labelling
    # Until this many seconds of confirmed closures were learned, the closed prior moves up to the person's open
    # outliers (frames below the open level by outlier_spreads mean-absolute-deviations) when those sit shallower.
    bootstrap_seconds: float = 3.0  # more than prior_seconds: the learned closures outweigh the prior at the handover
    outlier_spreads: float = 3.0

    def __post_init__(self) -> None:
        for name in ("prior_separation", "prior_scale", "prior_seconds", "half_life", "min_separation",
                     "max_pending", "outlier_spreads"):
            check_range("AdaptationConfig", name, getattr(self, name), 0.0, lo_open=True)
        check_range("AdaptationConfig", "refresh", self.refresh, 0.0)
        check_range("AdaptationConfig", "bootstrap_seconds", self.bootstrap_seconds, 0.0)
        check_range("AdaptationConfig", "max_down", self.max_down, 0.0, _LIMIT / 2)
        check_range("AdaptationConfig", "max_up", self.max_up, 0.0, _LIMIT / 2)


@dataclass(frozen=True)
class LevelsState:
    """What the estimator has learned about this eye (calibrated logits), and the seconds of evidence (faded)
    behind each level."""

    open_level: float
    closed_level: float
    boundary: float
    open_seconds: float
    closed_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def _weighted_median(weights: np.ndarray) -> float:
    """Median of a histogram, interpolated inside the median bin."""
    total = float(weights.sum())
    cum = np.cumsum(weights)
    k = min(int(np.searchsorted(cum, 0.5 * total)), _NBINS - 1)
    below = float(cum[k - 1]) if k > 0 else 0.0
    inside = float(weights[k])
    frac = (0.5 * total - below) / inside if inside > 0 else 0.5
    return float(_EDGES[k] + frac * _BIN)


class PersonLevels:
    """Online estimate of one eye's open and closed logit levels (``learn_one``, ``predict_one``, ``state``)."""

    def __init__(self, config: AdaptationConfig | None = None, midpoint: float = 0.0) -> None:
        self.config = config or AdaptationConfig()
        check_range("PersonLevels", "midpoint", midpoint, -_LIMIT / 2, _LIMIT / 2)
        self.prior_midpoint = float(midpoint)
        cfg = self.config
        half = 0.5 * cfg.prior_separation
        self._prior_levels = (self.prior_midpoint + half, self.prior_midpoint - half)
        self._prior = [self._bump(level) for level in self._prior_levels]
        self.reset()

    def _bump(self, level: float) -> np.ndarray:
        """A prior worth prior_seconds of observation centred on ``level`` (Laplace, width prior_scale)."""
        bump = np.exp(-np.abs(_CENTRES - level) / self.config.prior_scale)
        return bump * (self.config.prior_seconds / bump.sum())

    def reset(self) -> None:
        """Forget the person: back to the prior."""
        self._open = np.zeros(_NBINS)  # seconds per bin of frames the stream decided were open
        self._closed = np.zeros(_NBINS)  # ... and of frames of its confirmed closures
        self._pending = 0.0  # seconds learned since the levels were last recomputed
        self._set(LevelsState(*self._prior_levels, self.prior_midpoint, 0.0, 0.0))

    def _set(self, state: LevelsState) -> None:
        self._state = state
        self._above = 1.0 / max(state.open_level - state.boundary, 1e-6)
        self._below = 1.0 / max(state.boundary - state.closed_level, 1e-6)

    def histograms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bin centres, seconds per bin of open-decided frames, of closed-decided frames), faded, without the
        prior."""
        return _CENTRES.copy(), self._open.copy(), self._closed.copy()

    def state(self) -> LevelsState:
        return self._state

    def predict_one(self, z: float) -> float:
        """The logit in this person's units: +1 at their open level, -1 at their closed level, 0 at the boundary."""
        d = z - self._state.boundary
        return d * (self._above if d >= 0.0 else self._below)

    def learn_one(self, z: float, seconds: float, decided_open: bool) -> None:
        """Learn one frame's calibrated logit, standing for ``seconds``; ``decided_open``: the stream's decision."""
        if not self.config.enabled or seconds <= 0.0 or not math.isfinite(z):
            return
        fade = 0.5 ** (seconds / self.config.half_life)
        self._open *= fade
        self._closed *= fade
        b = min(max(int((z + _LIMIT) / _BIN), 0), _NBINS - 1)
        (self._open if decided_open else self._closed)[b] += seconds
        self._pending += seconds
        if self._pending >= self.config.refresh:
            self._pending = 0.0
            self._set(self._estimate())

    def _estimate(self) -> LevelsState:
        cfg = self.config
        open_w = self._open + self._prior[0]
        opened = _weighted_median(open_w)
        closed = _weighted_median(self._closed + self._closed_prior(open_w, opened))
        if opened - closed < cfg.min_separation:
            centre = 0.5 * (opened + closed)
            opened, closed = centre + 0.5 * cfg.min_separation, centre - 0.5 * cfg.min_separation
        boundary = 0.5 * (opened + closed)
        boundary = min(max(boundary, self.prior_midpoint - cfg.max_down), self.prior_midpoint + cfg.max_up)
        opened, closed = max(opened, boundary + 0.5), min(closed, boundary - 0.5)
        return LevelsState(opened, closed, boundary, float(self._open.sum()), float(self._closed.sum()))

    def _closed_prior(self, open_w: np.ndarray, opened: float) -> np.ndarray:
        """The fixed closed prior, or while few closures were confirmed, one at the person's open outliers if they
        sit shallower: a person whose closed eyes score shallower than the prior would otherwise never reach the
        confirmation depth, and never teach the closed level (measured: F1 0.92 -> 0.97 on such a subject)."""
        cfg = self.config
        if float(self._closed.sum()) >= cfg.bootstrap_seconds:
            return self._prior[1]
        spread = float(np.dot(open_w, np.abs(_CENTRES - opened))) / float(open_w.sum())
        below = int(np.searchsorted(_CENTRES, opened - cfg.outlier_spreads * spread))
        outliers = np.zeros(_NBINS)
        outliers[:below] = (self._open + self._closed)[:below]
        if float(outliers.sum()) < 0.5 * cfg.bootstrap_seconds:
            return self._prior[1]
        level = _weighted_median(outliers)
        return self._bump(level) if level > self._prior_levels[1] else self._prior[1]


Sample = tuple[str, float, float, float]  # side, calibrated logit, seconds, score (person units, when seen)


class DecisionLabels:
    """Turns the state machine's decisions into labels for each eye's ``PersonLevels``.

    Frames of the open phase are open. Frames of a closure are held until the machine decides: once the closure is
    confirmed they are closed (open flickers inside it, REOPENING frames, stay open); a closure dropped as noise
    (never deep enough, too short) makes them open; one dropped as unknown (the eyes were lost) discards them. At
    most ``max_pending`` seconds are held. (``EyeStream._learn`` then teaches only the core frames of a closure, by
    each sample's score at the time it was seen, as closed.)
    """

    def __init__(self, max_pending: float = 10.0) -> None:
        self.max_pending = max_pending
        self.reset()

    def reset(self) -> None:
        self._held: list[tuple[list[Sample], bool]] = []  # (samples, frame was reopening)
        self._held_seconds = 0.0
        self._closure: float | None = None  # start of the closure being held

    def _release(self, closed: bool) -> Iterable[tuple[Sample, bool]]:
        for samples, reopening in self._held:
            for sample in samples:
                yield sample, closed and not reopening
        self._held, self._held_seconds = [], 0.0

    def label(self, samples: list[Sample], in_closure: bool, closure_start: float | None, confirmed: bool,
              reopening: bool, open_now: bool, ended: str | None) -> list[tuple[Sample, bool]]:
        """Labels to learn after one frame. ended: "event" | "noise" | "unknown" when a closure ended here."""
        out: list[tuple[Sample, bool]] = []
        if ended is not None or (in_closure and closure_start != self._closure):
            out += list(self._release(ended == "event")) if ended != "unknown" else []
            self._held, self._held_seconds, self._closure = [], 0.0, None
        if in_closure:
            self._closure = closure_start
            if confirmed:
                out += list(self._release(True))
                out += [(s, not reopening) for s in samples]
            else:
                self._held.append((samples, reopening))
                self._held_seconds += max((s[2] for s in samples), default=0.0)
                while self._held_seconds > self.max_pending and self._held:
                    dropped, _ = self._held.pop(0)
                    self._held_seconds -= max((s[2] for s in dropped), default=0.0)
        elif open_now:
            out += [(s, False) for s in samples]
        return out
