"""``eyesdk tune``: time every backend x precision this bundle ships on this device and remember the fastest.

Only artifacts listed in the manifest are timed, i.e. those that passed the bundle's accuracy-drift gate, and each
must reproduce the bundle's reference logits here (the same check selection applies). The winner is cached per
device fingerprint + bundle sha256 + thread count, one small JSON file per key in the user cache directory, so a
different machine, runtime upgrade or retrained bundle never reuses a stale answer. Files are written atomically
(temp file + ``os.replace``): concurrent tuners can only race to write the same complete content, never leave half
a file. A corrupt or foreign cache file is ignored with a log line, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from . import backends, selection
from .atomic import atomic_write_text
from .bundle import Bundle
from .device import DeviceInfo, probe
from .errors import BackendUnavailableError
from .formats import BACKENDS, PRECISIONS
from .timing import interleaved_us

logger = logging.getLogger("eyesdk")

CACHE_SCHEMA = "eyesdk.tune/1"


def cache_dir() -> Path:
    """EYESDK_CACHE_DIR if set, else $XDG_CACHE_HOME/eyesdk, else ~/.cache/eyesdk."""
    override = os.environ.get("EYESDK_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "eyesdk"


def cache_path(bundle: Bundle, threads: int = 1, device: DeviceInfo | None = None) -> Path:
    device = device or probe()
    return cache_dir() / f"tune-{device.fingerprint}-{bundle.sha256[:16]}-t{threads}.json"


@dataclass
class TuneResult:
    backend: str
    precision: str
    p50_us: dict[str, float]  # "backend precision" -> median µs of one batch-1 run
    rejected: dict[str, str] = field(default_factory=dict)  # "backend precision" -> why it was not timed
    threads: int = 1
    fingerprint: str = ""
    bundle_sha256: str = ""
    path: Path | None = None

    @property
    def choice(self) -> tuple[str, str]:
        return self.backend, self.precision

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": CACHE_SCHEMA,
            "backend": self.backend,
            "precision": self.precision,
            "p50_us": self.p50_us,
            "rejected": self.rejected,
            "threads": self.threads,
            "fingerprint": self.fingerprint,
            "bundle_sha256": self.bundle_sha256,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def read_cache(bundle: Bundle, threads: int = 1, device: DeviceInfo | None = None) -> TuneResult | None:
    """The cached tuning result for this device + bundle + threads, or None (absent, corrupt, or for another key)."""
    device = device or probe()
    path = cache_path(bundle, threads, device)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        logger.warning("eyesdk: ignoring unreadable tuning cache %s (%s)", path, exc)
        return None
    problem = _cache_problem(data, bundle, threads, device)
    if problem:
        logger.warning("eyesdk: ignoring tuning cache %s (%s)", path, problem)
        return None
    return TuneResult(
        backend=data["backend"],
        precision=data["precision"],
        p50_us=dict(data.get("p50_us") or {}),
        rejected=dict(data.get("rejected") or {}),
        threads=threads,
        fingerprint=device.fingerprint,
        bundle_sha256=bundle.sha256,
        path=path,
    )


def _cache_problem(data: Any, bundle: Bundle, threads: int, device: DeviceInfo) -> str | None:
    if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
        return f"not a {CACHE_SCHEMA} object"
    if data.get("backend") not in BACKENDS or data.get("precision") not in PRECISIONS:
        return f"unknown choice {data.get('backend')!r} {data.get('precision')!r}"
    if data.get("fingerprint") != device.fingerprint or data.get("bundle_sha256") != bundle.sha256:
        return "written for another device or bundle"
    if data.get("threads") != threads:
        return f"written for threads={data.get('threads')!r}"
    for key in ("p50_us", "rejected"):  # copied with dict(): anything but an object would raise, not be ignored
        if not isinstance(data.get(key) or {}, dict):
            return f"{key!r} is a {type(data[key]).__name__}, not an object"
    return None


def cached_choice(bundle: Bundle, threads: int = 1, device: DeviceInfo | None = None) -> tuple[str, str] | None:
    """(backend, precision) that ``eyesdk tune`` found fastest here for this bundle, if it was run."""
    result = read_cache(bundle, threads, device)
    return result.choice if result else None


def write_cache(result: TuneResult, bundle: Bundle, device: DeviceInfo | None = None) -> Path:
    """Atomically write a tuning result: a reader sees the old file or the new one, never a torn one."""
    path = cache_path(bundle, result.threads, device)
    atomic_write_text(path, json.dumps(result.to_dict(), indent=1))
    result.path = path
    return path


def time_runners(
    runners: dict[str, backends.Runner], sample: np.ndarray, rounds: int = 7, calls: int = 60
) -> dict[str, float]:
    """Median µs per batch-1 run of each runner: ``rounds`` interleaved rounds of ``calls`` calls (eyesdk.timing)."""
    contestants = {key: partial(runner.run, sample) for key, runner in runners.items()}
    times = interleaved_us(contestants, calls=rounds * calls, rounds=rounds, warmup=10)  # warm-up: first calls plan
    return {key: float(np.median(values)) for key, values in times.items()}


def tune(
    bundle: Bundle,
    threads: int = 1,
    device: DeviceInfo | None = None,
    write: bool = True,
    rounds: int = 7,
    calls: int = 60,
) -> TuneResult:
    """Time each installed backend x precision the bundle ships, pick the fastest, and (by default) cache it."""
    device = device or probe()
    probe_inputs = bundle.probe()
    runners: dict[str, backends.Runner] = {}
    rejected: dict[str, str] = {}
    for candidate in selection.candidates(order=selection.default_order(device)):
        key = str(candidate)
        try:
            _, runner = selection.load_candidate(bundle, candidate, threads, probe_inputs)
        except BackendUnavailableError as exc:
            rejected[key] = str(exc)
            continue
        runners[key] = runner
    if not runners:
        reasons = "; ".join(f"{k}: {v}" for k, v in rejected.items())
        raise BackendUnavailableError(f"nothing to tune for bundle {bundle.name!r} here: {reasons}")
    size = bundle.contract.size
    if probe_inputs is not None:
        sample = np.ascontiguousarray(probe_inputs[:1])
    else:
        sample = np.random.default_rng(0).standard_normal((1, 1, size, size)).astype(np.float32)
    timings = time_runners(runners, sample, rounds=rounds, calls=calls)
    best = min(timings, key=timings.__getitem__)
    backend, precision = best.split(" ")
    result = TuneResult(
        backend=backend,
        precision=precision,
        p50_us={k: round(v, 2) for k, v in timings.items()},
        rejected=rejected,
        threads=threads,
        fingerprint=device.fingerprint,
        bundle_sha256=bundle.sha256,
    )
    if write:
        write_cache(result, bundle, device)
    return result


def tuned_choice(bundle: Bundle, threads: int = 1, device: DeviceInfo | None = None) -> tuple[str, str]:
    """The cached winner, tuning first when there is none yet (``EyeState(autotune=True)``)."""
    cached = cached_choice(bundle, threads, device)
    if cached is not None:
        return cached
    result = tune(bundle, threads, device, write=False)
    try:
        write_cache(result, bundle, device)
    except OSError as exc:  # a read-only or full cache directory costs the next start a re-tune, not this one
        logger.warning("eyesdk: could not cache the tuning result in %s (%s)", cache_dir(), exc)
    return result.choice
