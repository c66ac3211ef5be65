"""The one way eyesdk times a call: interleaved rounds of back-to-back calls, per-call microseconds.

``eyesdk tune`` (choosing a backend), ``eyesdk-bench`` (latency, peers) and the stream benchmarks all call
:func:`interleaved_us`, so "p50 µs" means the same everywhere. Interleaving the contestants round by round makes a
load change on a shared machine hit every contestant alike: compare ratios measured in one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np


def interleaved_us(
    contestants: Mapping[str, Callable[[], object]], calls: int, rounds: int = 10, warmup: int = 50
) -> dict[str, np.ndarray]:
    """Microseconds of each of ``calls`` calls per contestant, after ``warmup`` untimed calls each.

    The calls are split into ``rounds`` rounds; every round runs each contestant's share back to back (so caches stay
    warm within a contestant, as in a real loop) and then moves on to the next contestant.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    rounds = max(1, min(rounds, calls))
    for fn in contestants.values():
        for _ in range(warmup):
            fn()
    per_round = [calls // rounds + (1 if r < calls % rounds else 0) for r in range(rounds)]
    samples: dict[str, list[float]] = {key: [] for key in contestants}
    clock = time.perf_counter_ns
    for n in per_round:
        for key, fn in contestants.items():
            out = samples[key]
            for _ in range(n):
                start = clock()
                fn()
                out.append((clock() - start) / 1000.0)
    return {key: np.asarray(values, dtype=np.float64) for key, values in samples.items()}


def summarize_us(samples: Sequence[float] | np.ndarray | None) -> dict[str, float | None]:
    """p50/p90/p99/mean of per-call microseconds (None values when nothing was measured)."""
    if samples is None or len(samples) == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    values = np.asarray(samples, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(values.mean())}
