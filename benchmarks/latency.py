"""What the benchmarks time and how: the crop, the contestants of a batch-1 round, batch rates, cold start, imports.

Every timing goes through ``eyesdk.timing.interleaved_us`` (the one call timer ``eyesdk tune`` uses too):
contestants (our artifacts, peers) are timed in interleaved rounds, not one after the other, so a clock-speed change
or a neighbour's load hits every contestant alike and the *ratios* stay meaningful when absolute numbers wander.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from eyesdk.timing import interleaved_us

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


def batch1_contestants(states: Mapping[str, Any], peers: Sequence[Any], crop: np.ndarray
                       ) -> dict[str, Callable[[], object]]:
    """The calls a batch-1 round times: our public ``predict`` per state, and per peer two calls.

    ``peer:NAME`` is what a user of the peer pays per crop (its own preprocessing of the same decoded crop, then
    inference); ``peer-run:NAME`` is its bare inference call on an input prepared once, by the peer's own contract
    (``Peer.prepare``), never by ours.
    """
    calls: dict[str, Callable[[], object]] = {key: partial(state.predict, crop) for key, state in states.items()}
    for peer in peers:
        prepared = peer.prepare(crop)
        calls[f"peer:{peer.name}"] = partial(_peer_call, peer, crop)
        calls[f"peer-run:{peer.name}"] = partial(peer.session_run, prepared)
    return calls


def _peer_call(peer: Any, crop: np.ndarray) -> object:
    return peer.prob_open(peer.prepare(crop))


def batch_times(states: Mapping[str, Any], stack: np.ndarray, runs: int, rounds: int = 10) -> dict[str, np.ndarray]:
    """Microseconds of each state's ``predict_batch(stack)`` calls, about ``runs`` crops' worth, interleaved."""
    if not states:
        return {}
    calls = {key: partial(state.predict_batch, stack) for key, state in states.items()}
    n_calls = calls_for_batch(runs, len(stack))
    return interleaved_us(calls, n_calls, min(rounds, n_calls), warmup=2)


def batch_rates(states: Mapping[str, Any], stack: np.ndarray, runs: int, rounds: int = 10) -> dict[str, float | None]:
    """Crops/s of each state's ``predict_batch(stack)`` from its median call (:func:`batch_times`)."""
    times = batch_times(states, stack, runs, rounds)
    return {key: throughput_per_s(float(np.median(values)), len(stack)) for key, values in times.items()}
