"""One benchmark run: a bundle's backend x precision matrix, measured on this device, as an ``eyesdk.bench/1`` dict.

The matrix comes from the format table (``eyesdk.formats``) intersected with the bundle's manifest, never from a
hand-written list, so a new format or precision is benchmarked as soon as the exporter ships it. Each artifact is
measured through the public ``EyeState`` for speed (what a user's call costs) and through its bare runner for parity
and quality (so an artifact that fails parity, which ``EyeState`` refuses to load, still gets its numbers reported).
"""

from __future__ import annotations

import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eyesdk import backends
from eyesdk.bundle import Bundle
from eyesdk.errors import EyeSDKError
from eyesdk.formats import FORMATS, PRECISIONS

from . import accuracy, latency, parity
from .data import LabelledData, decode_grey
from .gates import Gates, artifact_name, check_gates
from .peers import Peer, load_peer
from .schema import SCHEMA_ID

logger = logging.getLogger("eyesdk")

BATCH_SIZES = (1, 8, 64)
QUICK_RUNS = 20
_CHUNK = 1024  # crops per runner call when scoring data: bounds memory like EyeState.logits does

Progress = Callable[[str], None]


@dataclass
class Settings:
    """What to measure and how hard; ``quick`` trades precision for a seconds-long smoke test."""

    runs: int = 1000
    threads: tuple[int, ...] = (1,)
    backends: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    rounds: int = 10
    quick: bool = False
    warmup: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.quick:
            self.runs = min(self.runs, QUICK_RUNS)
            self.batch_sizes = ()
        if self.warmup < 0:
            self.warmup = max(5, min(100, self.runs // 5))


@dataclass
class Planned:
    """One result entry in the making: an artifact of the bundle at one thread count."""

    backend: str
    precision: str
    artifact: dict[str, Any]
    threads: int
    result: dict[str, Any]
    runner: Any = None
    state: Any = None

    @property
    def key(self) -> str:
        return artifact_name(self.result)


def plan(bundle: Bundle, settings: Settings) -> list[Planned]:
    """Format table order x precision order, restricted to what the bundle ships and what was asked for."""
    wanted_backends = settings.backends or tuple(f.backend for f in FORMATS.values())
    wanted_precisions = settings.precisions or PRECISIONS
    entries = []
    for fmt in FORMATS.values():
        if fmt.backend not in wanted_backends:
            continue
        for precision in PRECISIONS:
            artifact = bundle.artifact(fmt.name, precision)
            if precision not in wanted_precisions or artifact is None:
                continue
            for threads in settings.threads:
                entries.append(Planned(fmt.backend, precision, artifact, threads, _empty_result(fmt, artifact,
                                                                                                 threads)))
    return entries


def _empty_result(fmt: Any, artifact: dict[str, Any], threads: int) -> dict[str, Any]:
    return {
        "backend": fmt.backend,
        "precision": artifact["precision"],
        "format": fmt.name,
        "file": artifact["file"],
        "threads": threads,
        "temperature": float(artifact["temperature"]),
        "error": None,
        "backend_import_ms": None,
        "cold_start_ms": None,
        "latency_us": None,
        "throughput_per_s": None,
        "ratios": {"p50_vs_fastest": None, "p50_vs_peer": None},
        "parity": {"max_abs_diff": None, "tolerance": None, "ok": None},
        "drift": None,
        "accuracy": None,
        "calibration": None,
        "separation": None,
        "breakdown": None,
        "plots": None,
    }


def _empty_peer(peer: Peer) -> dict[str, Any]:
    from eyesdk.bundle import file_sha256

    return {
        "name": peer.name,
        "spec": peer.spec,
        "format": peer.format,
        "path": str(peer.path),
        "sha256": file_sha256(peer.path),
        "runtime": peer.runtime,
        "error": None,
        "cold_start_ms": None,
        "latency_us": None,
        "latency_run_us": None,
        "ratios": {"ours_fastest_p50_vs_peer": None},
        "accuracy": None,
        "calibration": None,
        "separation": None,
        "breakdown": None,
        "plots": None,
    }


def device_block() -> dict[str, Any]:
    """``eyesdk.device.probe()`` plus the versions of every library that can move a number here."""
    from importlib import metadata

    from eyesdk import __version__
    from eyesdk.device import probe

    libraries: dict[str, str | None] = {"python": platform.python_version(), "eyesdk": __version__}
    for dist in ("numpy", "onnxruntime", "openvino", "ai-edge-litert", "tflite-runtime", "pillow"):
        try:
            libraries[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            libraries[dist] = None
    return {**probe().to_dict(), "libraries": libraries}


def model_block(bundle: Bundle) -> dict[str, Any]:
    """Which bundle was measured: its name, path and the manifest's sha256 (which pins every file's checksum)."""
    manifest = bundle.manifest
    params = (manifest.get("model") or {}).get("params")
    return {
        "name": bundle.name,
        "path": str(bundle.path),
        "manifest_sha256": bundle.sha256,
        "created": manifest.get("created"),
        "eyesdk_version": manifest.get("eyesdk_version"),
        "params": params if isinstance(params, int) else None,
        "threshold": bundle.threshold,
    }


def _logits(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(run(x[i : i + _CHUNK]), dtype=np.float64).reshape(-1)
                           for i in range(0, len(x), _CHUNK)])


def _load(entry: Planned, bundle: Bundle, crop: np.ndarray, probe: np.ndarray | None, import_ms: dict[str, float]
          ) -> None:
    """Import, parity on the bare runner, then the timed cold start of the public EyeState (+ first predict)."""
    from eyesdk.api import EyeState

    result = entry.result
    if not backends.is_available(entry.backend):
        result["error"] = f"not installed ({backends.install_hint(entry.backend)})"
        return
    if entry.backend not in import_ms:
        import_ms[entry.backend] = latency.import_runtime(entry.backend)
    result["backend_import_ms"] = import_ms[entry.backend]
    try:
        entry.runner = backends.load_backend(entry.backend).load(bundle.artifact_files(entry.artifact), entry.threads)
        result["parity"] = parity.probe_parity(entry.runner.run, entry.artifact, probe)
    except Exception as exc:  # a runtime that cannot load the file is a result to report, not a crash
        result["error"] = f"failed to load {entry.artifact['file']}: {type(exc).__name__}: {exc}"
        return

    def cold() -> Any:
        state = EyeState(bundle, backend=entry.backend, precision=entry.precision, threads=entry.threads)
        state.predict(crop)
        return state

    try:
        entry.state, result["cold_start_ms"] = latency.timed(cold)
    except (EyeSDKError, ValueError, RuntimeError) as exc:
        result["error"] = f"EyeState refused it: {exc}"


def _peer_quality(peers: Sequence[tuple[Peer, dict[str, Any]]], data: LabelledData, slices: dict[str, np.ndarray],
                  tick: Progress) -> None:
    """Each peer on the same decoded crops as ours, through its own preprocessing."""
    live = [(p, r) for p, r in peers if r["error"] is None]
    if not live:
        return
    probs = {id(p): np.empty(len(data.samples), dtype=np.float64) for p, _ in live}
    for i, sample in enumerate(data.samples):
        grey = decode_grey(sample.path)
        for peer, _ in live:
            probs[id(peer)][i] = peer.prob_open(peer.prepare(grey))[0]
    for peer, result in live:
        z = accuracy.logits_from_probabilities(probs[id(peer)])
        result.update(accuracy.score(data.y, z, 1.0, 0.5))
        result["breakdown"] = accuracy.breakdown(slices, data.y, z, 1.0, 0.5)
        tick(f"scored peer {peer.name}")


def _quality(entries: Sequence[Planned], bundle: Bundle, data: LabelledData, slices: dict[str, np.ndarray],
             tick: Progress) -> None:
    """Accuracy, calibration, separation, breakdown and drift vs the fp32 reference, once per artifact."""
    cache: dict[tuple[str, str], np.ndarray | None] = {}

    def logits_of(backend: str, precision: str) -> np.ndarray | None:
        key = (backend, precision)
        if key not in cache:
            entry = next((e for e in entries if (e.backend, e.precision) == key and e.runner is not None), None)
            runner = entry.runner if entry is not None else _reference_runner(bundle, backend, precision)
            cache[key] = _logits(runner.run, data.x) if runner is not None else None
        return cache[key]

    threshold = bundle.threshold
    for entry in entries:
        if entry.runner is None:
            continue
        result = entry.result
        z = logits_of(entry.backend, entry.precision)
        if z is None:  # cannot happen for an entry with a runner; kept so a refactor cannot score None
            continue
        t = float(entry.artifact["temperature"])
        result.update(accuracy.score(data.y, z, t, threshold))
        result["breakdown"] = accuracy.breakdown(slices, data.y, z, t, threshold)
        for ref in _reference_candidates(bundle, entry.backend):
            z_ref = logits_of(ref[0], "fp32")
            if z_ref is not None:
                t_ref = float(ref[1]["temperature"])
                result["drift"] = accuracy.drift(data.y, z_ref, z, t_ref, t, threshold, f"{ref[0]} fp32")
                break
        tick(f"scored {entry.key}")


def _reference_candidates(bundle: Bundle, backend: str) -> list[tuple[str, dict[str, Any]]]:
    """fp32 artifacts to compare against: the same backend's first, then the others in manifest order."""
    fp32 = [(FORMATS[a["format"]].backend, a) for a in bundle.artifacts if a["precision"] == "fp32"]
    return sorted(fp32, key=lambda pair: pair[0] != backend)


def _reference_runner(bundle: Bundle, backend: str, precision: str) -> Any:
    """A runner for a reference artifact that is not itself in the benchmarked matrix (None if it cannot load)."""
    fmt = next(f for f in FORMATS.values() if f.backend == backend)
    artifact = bundle.artifact(fmt.name, precision)
    if artifact is None or not backends.is_available(backend):
        return None
    try:
        return backends.load_backend(backend).load(bundle.artifact_files(artifact), 1)
    except Exception as exc:  # the reference is optional: without it the next fp32 artifact is tried
        logger.warning("eyesdk-bench: drift reference %s fp32 cannot load (%s: %s); trying the next fp32 artifact",
                       backend, type(exc).__name__, exc)
        return None


def _ratios(entries: Sequence[Planned], peers: Sequence[tuple[Peer, dict[str, Any]]]) -> None:
    p50s = [e.result["latency_us"]["p50"] for e in entries if e.result["latency_us"]]
    fastest = min((p for p in p50s if p), default=None)
    peer_p50 = next((r["latency_us"]["p50"] for _, r in peers if r["latency_us"] and r["latency_us"]["p50"]), None)
    for entry in entries:
        lat = entry.result["latency_us"]
        if not lat or not lat["p50"]:
            continue
        entry.result["ratios"] = {
            "p50_vs_fastest": lat["p50"] / fastest if fastest else None,
            "p50_vs_peer": lat["p50"] / peer_p50 if peer_p50 else None,
        }
    for _, result in peers:
        if result["latency_us"] and result["latency_us"]["p50"] and fastest:
            result["ratios"] = {"ours_fastest_p50_vs_peer": fastest / result["latency_us"]["p50"]}


def run_bench(
    bundle: Bundle,
    settings: Settings,
    data: LabelledData | None = None,
    peer_specs: Sequence[str] = (),
    crop: tuple[np.ndarray, str] | None = None,
    gates: Gates | None = None,
    progress: Progress | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Measure everything ``settings`` asks for and return the bench document (not yet JSON-cleaned)."""
    tick = progress or (lambda _message: None)
    image, crop_source = crop if crop is not None else (latency.synthetic_crop(), "synthetic")
    entries = plan(bundle, settings)
    probe = bundle.probe()
    import_ms: dict[str, float] = {}
    for entry in entries:
        _load(entry, bundle, image, probe, import_ms)
        ok = entry.result["parity"]["ok"]
        tick(f"loaded {entry.key}: parity {'ok' if ok else 'n/a' if ok is None else 'FAILED'}"
             + (f" ({entry.result['error']})" if entry.result["error"] else ""))

    peer_results: list[tuple[Peer, dict[str, Any]]] = []
    for spec in peer_specs:

        def cold(spec: str = spec) -> Peer:
            peer = load_peer(spec, settings.threads[0])
            peer.prob_open(peer.prepare(image))
            return peer

        peer, cold_ms = latency.timed(cold)
        result = _empty_peer(peer)
        result["cold_start_ms"] = cold_ms
        peer_results.append((peer, result))
        tick(f"loaded peer {peer.name}")

    # Latency: the public predict call on the same decoded crop, interleaved with the peers' equivalent calls.
    live = [e for e in entries if e.state is not None]
    contestants: dict[str, Callable[[], object]] = {e.key: (lambda s: lambda: s.predict(image))(e.state) for e in live}
    prepared = {}
    for peer, result in peer_results:
        if result["error"] is None:
            prepared[peer.name] = peer.prepare(image)
            contestants[f"peer:{peer.name}"] = (lambda p: lambda: p.prob_open(p.prepare(image)))(peer)
            contestants[f"peer-run:{peer.name}"] = (lambda p, x: lambda: p.session_run(x))(peer, prepared[peer.name])
    if contestants:
        tick(f"timing {len(contestants)} contestants x {settings.runs} calls")
        times = latency.measure(contestants, settings.runs, settings.rounds, settings.warmup)
        for entry in live:
            entry.result["latency_us"] = latency.summarize_us(times[entry.key])
        for peer, result in peer_results:
            if result["error"] is None:
                result["latency_us"] = latency.summarize_us(times[f"peer:{peer.name}"])
                result["latency_run_us"] = latency.summarize_us(times[f"peer-run:{peer.name}"])

    # Throughput: predict_batch on N x H x W uint8 stacks.
    for entry in live:
        entry.result["throughput_per_s"] = {str(b): None for b in BATCH_SIZES}
    for batch in settings.batch_sizes:
        stack = latency.batch_stack(image, batch)
        calls = {e.key: (lambda s, x: lambda: s.predict_batch(x))(e.state, stack) for e in live}
        if not calls:
            break
        tick(f"throughput at batch {batch}")
        n_calls = latency.calls_for_batch(settings.runs, batch)
        times = latency.measure(calls, n_calls, min(settings.rounds, n_calls), warmup=2)
        for entry in live:
            entry.result["throughput_per_s"][str(batch)] = latency.throughput_per_s(
                float(np.median(times[entry.key])), batch)
    _ratios(entries, peer_results)

    if data is not None:
        slices = accuracy.attribute_slices(data.samples)
        _quality(entries, bundle, data, slices, tick)
        if peer_results:
            _peer_quality(peer_results, data, slices, tick)

    document: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command or " ".join(sys.argv),
        "device": device_block(),
        "model": model_block(bundle),
        "settings": {
            "runs": settings.runs,
            "warmup": settings.warmup,
            "rounds": settings.rounds,
            "threads": list(settings.threads),
            "batch_sizes": list(settings.batch_sizes),
            "quick": settings.quick,
            "crop": {"source": crop_source, "height": int(image.shape[0]), "width": int(image.shape[1])},
        },
        "data": data.summary() if data is not None else None,
        "results": [e.result for e in entries],
        "peers": [r for _, r in peer_results],
    }
    document["gates"] = check_gates(document, gates or Gates())
    return document
