"""Timing: per-call latency percentiles, throughput per batch size, cold start and runtime import cost.

Contestants (our artifacts, peers) are timed in interleaved rounds, not one after the other: on a shared or
thermally throttled machine the clock speed and the neighbours' load drift during a run, and interleaving makes
that drift hit every contestant alike, so the *ratios* stay meaningful even when absolute numbers wander.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

CROP_SIDE = 90  # MRL crops are 52-299 px, median ~87: a typical crop a detector hands over


def synthetic_crop(side: int = CROP_SIDE, seed: int = 0) -> np.ndarray:
    """A uint8 grey open-eye-like crop drawn with numpy: timing needs realistic size and dtype, not a real eye."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    ellipse = ((xx - side / 2) / (side / 2.5)) ** 2 + ((yy - side / 2) / (side / 5)) ** 2
    noise = np.random.default_rng(seed).normal(0, 6, (side, side))
    return np.clip(170 - 110 * (ellipse < 1) + noise, 0, 255).astype(np.uint8)


def import_runtime(backend: str) -> float:
    """Import a backend's runtime library and return the milliseconds it took (about 0 when already imported).

    Done before cold starts are timed, so the first artifact of a backend is not charged for an import that every
    later one gets for free; the import cost is reported on its own.
    """
    start = time.perf_counter()
    from eyesdk.formats import BACKEND_FORMAT, format_of_backend

    modules = format_of_backend(backend).load_modules if backend in BACKEND_FORMAT else ()
    for name in modules:
        if name in sys.modules:
            break
        try:
            importlib.import_module(name)
            break
        except ImportError:
            continue
    return (time.perf_counter() - start) * 1e3


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its wall time in milliseconds."""
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1e3


def measure(
    contestants: Mapping[str, Callable[[], object]], calls: int, rounds: int = 10, warmup: int = 50
) -> dict[str, np.ndarray]:
    """Microseconds of each of ``calls`` calls per contestant, after ``warmup`` untimed calls each.

    The calls are split into ``rounds`` rounds; every round runs each contestant's share back to back (so caches stay
    warm within a contestant, as in a real loop) and then moves on to the next contestant.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
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


def batch_stack(crop: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """An (size, H, W) uint8 stack of the crop with a little noise per copy, so no layer can cache a result."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-3, 4, size=(size, *crop.shape), dtype=np.int16)
    return np.clip(crop.astype(np.int16)[None] + noise, 0, 255).astype(np.uint8)


def throughput_per_s(median_us: float | None, batch: int) -> float | None:
    """Crops per second of a batch call taking ``median_us``."""
    if median_us is None or not math.isfinite(median_us) or median_us <= 0:
        return None
    return batch / (median_us * 1e-6)


def calls_for_batch(runs: int, batch: int, minimum: int = 5) -> int:
    """Timed calls for a batch size: about ``runs`` crops in all, but never fewer than ``minimum`` calls."""
    return max(minimum, math.ceil(runs / batch))
