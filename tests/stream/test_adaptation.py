"""PersonLevels on synthetic logit streams: what each level is learned from, the bootstrap, the bounds."""

from __future__ import annotations

import numpy as np
import pytest

from eyesdk.stream.adaptation import AdaptationConfig, PersonLevels
from eyesdk.stream.errors import StreamConfigError

DT = 1.0 / 30.0


def feed(levels: PersonLevels, values, decided_open: bool) -> None:
    for z in values:
        levels.learn_one(float(z), DT, decided_open)


def test_the_closed_level_comes_from_confirmed_closures_not_from_the_open_tail() -> None:
    """A person whose open eyes are often scored low (30 % at -1): the closed level must be their closures' level,
    not the far tail below a wide open distribution (that sank the boundary and stopped all confirmations)."""
    rng = np.random.default_rng(0)
    levels = PersonLevels()
    for _ in range(40):
        opened = np.where(rng.random(90) < 0.3, rng.normal(-1.0, 1.0, 90), rng.normal(5.0, 2.0, 90))
        feed(levels, opened, True)
        feed(levels, rng.normal(-4.5, 0.8, 8), False)
    state = levels.state()
    assert state.closed_level == pytest.approx(-4.5, abs=0.3)  # the closures' median
    assert state.open_level > 1.0 and state.closed_level < state.boundary < state.open_level


def test_a_person_with_shallow_closures_is_bootstrapped_from_their_open_outliers() -> None:
    """Closed eyes at -1.2 never reach the prior's depth; while few closures were confirmed, the closed prior moves
    to the frames far below the person's tight open level, and once enough were learned they hold it."""
    rng = np.random.default_rng(1)
    levels = PersonLevels()
    prior_closed = levels.state().closed_level
    for _ in range(20):  # nothing confirmed yet: the stream labels the short closures open (noise)
        feed(levels, rng.normal(4.5, 0.5, 110), True)
        feed(levels, rng.normal(-1.2, 0.4, 8), True)
    booted = levels.state()
    assert booted.closed_seconds == 0.0 and booted.closed_level > prior_closed + 2.0
    for _ in range(30):  # now they are confirmed: learned as closed
        feed(levels, rng.normal(4.5, 0.5, 110), True)
        feed(levels, rng.normal(-1.2, 0.4, 8), False)
    held = levels.state()
    assert held.closed_seconds > levels.config.bootstrap_seconds
    assert -2.0 < held.closed_level < -0.6


def test_without_a_tight_open_level_the_prior_stays() -> None:
    levels = PersonLevels()
    feed(levels, np.linspace(-3.0, 8.0, 600), True)  # open frames everywhere: no outliers to bootstrap from
    assert levels.state().closed_level == pytest.approx(-5.5, abs=0.5)


def test_frozen_levels_stay_at_the_prior() -> None:
    levels = PersonLevels(AdaptationConfig(enabled=False), midpoint=0.4)
    feed(levels, np.full(300, 1.0), True)
    feed(levels, np.full(30, -2.0), False)
    state = levels.state()
    assert (state.open_level, state.closed_level, state.boundary) == (5.9, -5.1, 0.4)
    assert levels.predict_one(5.9) == pytest.approx(1.0) and levels.predict_one(-5.1) == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bootstrap_seconds": -1.0}, r"AdaptationConfig.bootstrap_seconds = -1.0 is out of range"),
        ({"outlier_spreads": 0.0}, r"AdaptationConfig.outlier_spreads = 0.0 is out of range"),
    ],
)
def test_bad_adaptation_config_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(StreamConfigError, match=match):
        AdaptationConfig(**kwargs)
