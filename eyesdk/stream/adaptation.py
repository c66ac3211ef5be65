"""Online, label-free adaptation to one person: their own open and closed logit levels.

A stream sees one person for minutes. A fixed threshold fails on exactly the people who matter (glasses, glints,
narrow eyes): measured on unseen MRL subjects with the default model, one subject's OPEN eyes average a calibrated
logit of +0.8 (31 % of frames below the fixed threshold 0) while another's CLOSED eyes average -2.2; typical levels are
+5 / -6. ``PersonLevels`` is a river-style online estimator (``learn_one`` / ``predict_one``) of a two-component
Gaussian mixture over this eye's logits: each valid frame updates the open and the closed component by its posterior
responsibility, weighted by the seconds it stands for, with exponential forgetting (half-life) and a prior (the
population levels around the bundle's decision threshold) worth ``prior_seconds`` of evidence that never fades, so a
person who has not blinked yet keeps sensible levels. ``predict_one`` maps a logit into this person's units:
+1 at their open level, -1 at their closed level, 0 halfway, which is what the hysteresis thresholds are set in.

Guards keep it from running away: the two levels stay at least ``min_separation`` logits apart and their midpoint
within ``max_shift`` of the prior midpoint. Its state is a value (``state()``), so what it learned can be logged,
tested and reset on its own. ``enabled=False`` freezes it at the prior: the fixed-threshold baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .errors import check_range


@dataclass(frozen=True)
class AdaptationConfig:
    """Prior levels are relative to the bundle's decision threshold in calibrated-logit units (0 for 0.5)."""

    enabled: bool = True
    prior_separation: float = 11.0  # open level - closed level of a typical person
    prior_sd: float = 2.0  # spread of one person's logits within one state
    prior_seconds: float = 2.0  # weight of the prior, in seconds of observation
    half_life: float = 300.0  # seconds after which old evidence counts half
    min_separation: float = 3.0
    max_shift: float = 6.0
    min_sd: float = 0.5

    def __post_init__(self) -> None:
        for name in ("prior_separation", "prior_sd", "prior_seconds", "half_life", "min_separation", "min_sd"):
            check_range("AdaptationConfig", name, getattr(self, name), 0.0, lo_open=True)
        check_range("AdaptationConfig", "max_shift", self.max_shift, 0.0)


@dataclass(frozen=True)
class LevelsState:
    """What the estimator has learned about this eye (calibrated logits; seconds of evidence behind each level)."""

    open_level: float
    closed_level: float
    open_sd: float
    closed_sd: float
    open_seconds: float
    closed_seconds: float

    @property
    def midpoint(self) -> float:
        return 0.5 * (self.open_level + self.closed_level)

    @property
    def separation(self) -> float:
        return self.open_level - self.closed_level

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def _log_gauss(z: float, mean: float, sd: float) -> float:
    u = (z - mean) / sd
    return -0.5 * u * u - math.log(sd)


class PersonLevels:
    """Online estimate of one eye's open and closed logit levels (``learn_one``, ``predict_one``, ``state``)."""

    def __init__(self, config: AdaptationConfig | None = None, midpoint: float = 0.0) -> None:
        self.config = config or AdaptationConfig()
        check_range("PersonLevels", "midpoint", midpoint, -50.0, 50.0)
        self.prior_midpoint = float(midpoint)
        half = 0.5 * self.config.prior_separation
        self._prior = (self.prior_midpoint + half, self.prior_midpoint - half)
        self.reset()

    def reset(self) -> None:
        """Forget the person: back to the prior."""
        self._w = [0.0, 0.0]  # seconds of evidence: open, closed
        self._s = [0.0, 0.0]  # weighted sums of z
        self._q = [0.0, 0.0]  # weighted sums of z^2
        self._state = self._estimate()

    def _estimate(self) -> LevelsState:
        cfg = self.config
        p = cfg.prior_seconds
        means, sds = [], []
        for k in (0, 1):
            mu0 = self._prior[k]
            mean = (self._s[k] + p * mu0) / (self._w[k] + p)
            m2 = (self._q[k] + p * (cfg.prior_sd**2 + mu0 * mu0)) / (self._w[k] + p)
            means.append(mean)
            sds.append(math.sqrt(max(m2 - mean * mean, cfg.min_sd**2)))
        open_level, closed_level = means
        mid = 0.5 * (open_level + closed_level)
        half = 0.5 * max(open_level - closed_level, cfg.min_separation)
        mid = min(max(mid, self.prior_midpoint - cfg.max_shift), self.prior_midpoint + cfg.max_shift)
        return LevelsState(mid + half, mid - half, sds[0], sds[1], self._w[0], self._w[1])

    def state(self) -> LevelsState:
        return self._state

    def closed_probability(self, z: float) -> float:
        """Posterior P(closed | z) under this person's mixture (the weights are the evidence seen so far)."""
        st = self._state
        p = self.config.prior_seconds
        prior_closed = min(max((st.closed_seconds + p) / (st.open_seconds + st.closed_seconds + 2 * p), 0.02), 0.98)
        lo = _log_gauss(z, st.open_level, st.open_sd) + math.log(1.0 - prior_closed)
        lc = _log_gauss(z, st.closed_level, st.closed_sd) + math.log(prior_closed)
        d = lo - lc
        if d > 50.0:
            return 0.0
        return 1.0 / (1.0 + math.exp(d))

    def predict_one(self, z: float) -> float:
        """The logit in this person's units: +1 at their open level, -1 at their closed level."""
        st = self._state
        return (z - st.midpoint) / (0.5 * st.separation)

    def learn_one(self, z: float, seconds: float) -> None:
        """Learn from one valid frame's calibrated logit, standing for ``seconds`` of observation."""
        if not self.config.enabled or seconds <= 0.0 or not math.isfinite(z):
            return
        r_closed = self.closed_probability(z)
        decay = 0.5 ** (seconds / self.config.half_life)
        for k, r in ((0, 1.0 - r_closed), (1, r_closed)):
            w = r * seconds
            self._w[k] = self._w[k] * decay + w
            self._s[k] = self._s[k] * decay + w * z
            self._q[k] = self._q[k] * decay + w * z * z
        self._state = self._estimate()
