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
from eyesdk.formats import FORMATS
from eyesdk.timing import interleaved_us, summarize_us

from . import accuracy, latency, matrix, parity
from .data import LabelledData, decode_grey
from .gates import Gates, artifact_name, check_gates
from .matrix import Cell
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

    cell: Cell
    threads: int
    result: dict[str, Any]
    runner: Any = None
    state: Any = None

    @property
    def backend(self) -> str:
        return self.cell.backend

    @property
    def precision(self) -> str:
        return self.cell.precision

    @property
    def artifact(self) -> dict[str, Any]:
        return self.cell.artifact

    @property
    def key(self) -> str:
        return artifact_name(self.result)


def plan(bundle: Bundle, settings: Settings) -> list[Planned]:
    """Every artifact the matrix asks for (``benchmarks.matrix``), once per thread count."""
    return [Planned(cell, threads, _empty_result(cell, threads))
            for cell in matrix.cells(bundle, settings.backends, settings.precisions) for threads in settings.threads]


def _empty_result(cell: Cell, threads: int) -> dict[str, Any]:
    return {
        "backend": cell.backend,
        "precision": cell.precision,
        "format": cell.format.name,
        "file": cell.artifact["file"],
        "threads": threads,
        "temperature": float(cell.artifact["temperature"]),
        "error": None,
        "backend_import_ms": None,
        "cold_start_ms": None,
        "latency_us": None,
        "throughput_per_s": None,
        "ratios": {"p50_vs_fastest": None, "p50_vs_peer": None, "p50_vs_peer_run": None},
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

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    libraries.update({"numpy": version("numpy"), "pillow": version("pillow")})
    for fmt in FORMATS.values():  # each runtime's main distribution, and any alternative that is installed
        found = {dist: version(dist) for dist in fmt.distributions}
        libraries.update({d: v for d, v in found.items() if v is not None or d == fmt.distributions[0]})
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
        entry.runner = backends.load_backend(entry.backend).load(bundle.file(entry.artifact["file"]), entry.threads)
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


def load_entries(entries: Sequence[Planned], bundle: Bundle, crop: np.ndarray, tick: Progress) -> None:
    """Phase 1: every planned artifact loaded (bare runner + parity, then the timed EyeState cold start)."""
    probe = bundle.probe()
    import_ms: dict[str, float] = {}
    for entry in entries:
        _load(entry, bundle, crop, probe, import_ms)
        ok = entry.result["parity"]["ok"]
        tick(f"loaded {entry.key}: parity {'ok' if ok else 'n/a' if ok is None else 'FAILED'}"
             + (f" ({entry.result['error']})" if entry.result["error"] else ""))


def load_peers(specs: Sequence[str], threads: int, crop: np.ndarray, tick: Progress
               ) -> list[tuple[Peer, dict[str, Any]]]:
    """Phase 2: each ``--peer`` built and run once on the crop; its cold start is that first call's time."""
    loaded = []
    for spec in specs:

        def cold(spec: str = spec) -> Peer:
            peer = load_peer(spec, threads)
            peer.prob_open(peer.prepare(crop))
            return peer

        peer, cold_ms = latency.timed(cold)
        result = _empty_peer(peer)
        result["cold_start_ms"] = cold_ms
        loaded.append((peer, result))
        tick(f"loaded peer {peer.name}")
    return loaded


def time_latency(entries: Sequence[Planned], peers: Sequence[tuple[Peer, dict[str, Any]]], crop: np.ndarray,
                 settings: Settings, tick: Progress) -> None:
    """Phase 3: batch-1 latency of our public ``predict`` and of each peer's calls, in the same interleaved rounds."""
    live = [e for e in entries if e.state is not None]
    contestants = latency.batch1_contestants({e.key: e.state for e in live}, [p for p, _ in peers], crop)
    if not contestants:
        return
    tick(f"timing {len(contestants)} contestants x {settings.runs} calls")
    times = interleaved_us(contestants, settings.runs, settings.rounds, settings.warmup)
    for entry in live:
        entry.result["latency_us"] = summarize_us(times[entry.key])
    for peer, result in peers:
        result["latency_us"] = summarize_us(times[f"peer:{peer.name}"])
        result["latency_run_us"] = summarize_us(times[f"peer-run:{peer.name}"])


def time_throughput(entries: Sequence[Planned], crop: np.ndarray, settings: Settings, tick: Progress) -> None:
    """Phase 4: crops/s of ``predict_batch`` on N x H x W uint8 stacks of the crop, per batch size."""
    live = [e for e in entries if e.state is not None]
    for entry in live:
        entry.result["throughput_per_s"] = {str(b): None for b in BATCH_SIZES}
    if not live:
        return
    for batch in settings.batch_sizes:
        tick(f"throughput at batch {batch}")
        rates = latency.batch_rates({e.key: e.state for e in live}, latency.batch_stack(crop, batch), settings.runs,
                                    settings.rounds)
        for entry in live:
            entry.result["throughput_per_s"][str(batch)] = rates[entry.key]


def _ratios(entries: Sequence[Planned], peers: Sequence[tuple[Peer, dict[str, Any]]]) -> None:
    """Phase 5: each p50 against the fastest artifact's and the first peer's (whole call and bare run)."""

    def p50(latency_us: dict[str, Any] | None) -> float | None:
        return latency_us["p50"] if latency_us and latency_us["p50"] else None

    fastest = min((v for e in entries if (v := p50(e.result["latency_us"]))), default=None)
    peer_p50 = next((v for _, r in peers if (v := p50(r["latency_us"]))), None)
    peer_run_p50 = next((v for _, r in peers if (v := p50(r["latency_run_us"]))), None)
    for entry in entries:
        ours = p50(entry.result["latency_us"])
        if ours is None:
            continue
        entry.result["ratios"] = {
            "p50_vs_fastest": ours / fastest if fastest else None,
            "p50_vs_peer": ours / peer_p50 if peer_p50 else None,
            "p50_vs_peer_run": ours / peer_run_p50 if peer_run_p50 else None,
        }
    for _, result in peers:
        theirs = p50(result["latency_us"])
        if theirs and fastest:
            result["ratios"] = {"ours_fastest_p50_vs_peer": fastest / theirs}


def score_quality(entries: Sequence[Planned], peers: Sequence[tuple[Peer, dict[str, Any]]], bundle: Bundle,
                  data: LabelledData, tick: Progress) -> None:
    """Phase 6 (with ``--data``): our artifacts' quality and drift, then each peer's, on the same crops."""
    slices = accuracy.attribute_slices(data.samples)
    _quality(entries, bundle, data, slices, tick)
    if peers:
        _peer_quality(peers, data, slices, tick)


def _quality(entries: Sequence[Planned], bundle: Bundle, data: LabelledData, slices: dict[str, np.ndarray],
             tick: Progress) -> None:
    """Accuracy, calibration, separation, breakdown and drift vs the fp32 reference, once per artifact."""
    scored: dict[tuple[str, str], np.ndarray] = {}  # a thread sweep scores each artifact once
    runners = {(e.backend, e.precision): e.runner for e in entries if e.runner is not None}
    for entry in entries:
        if entry.runner is None:
            continue
        key = (entry.backend, entry.precision)
        if key not in scored:
            scored[key] = _logits(entry.runner.run, data.x)
        z, t = scored[key], float(entry.artifact["temperature"])
        result = entry.result
        result.update(accuracy.score(data.y, z, t, bundle.threshold))
        result["breakdown"] = accuracy.breakdown(slices, data.y, z, t, bundle.threshold)
        reference = _reference(bundle, entry.backend, runners, scored, data.x)
        if reference is not None:
            name, z_ref, t_ref = reference
            result["drift"] = accuracy.drift(data.y, z_ref, z, t_ref, t, bundle.threshold, name)
        tick(f"scored {entry.key}")


def _reference(bundle: Bundle, backend: str, runners: dict[tuple[str, str], Any],
               scored: dict[tuple[str, str], np.ndarray], x: np.ndarray) -> tuple[str, np.ndarray, float] | None:
    """(name, logits, temperature) of the fp32 artifact to measure drift against: the same backend's when it loads,
    else the others' in manifest order; None when no fp32 artifact can run here."""
    for ref_backend, artifact in _reference_candidates(bundle, backend):
        key = (ref_backend, "fp32")
        if key not in scored:
            runner = runners.get(key) or _reference_runner(bundle, ref_backend, artifact)
            if runner is None:
                continue
            scored[key] = _logits(runner.run, x)
        return f"{ref_backend} fp32", scored[key], float(artifact["temperature"])
    return None


def _reference_candidates(bundle: Bundle, backend: str) -> list[tuple[str, dict[str, Any]]]:
    """fp32 artifacts to compare against: the same backend's first, then the others in manifest order."""
    fp32 = [(FORMATS[a["format"]].backend, a) for a in bundle.artifacts if a["precision"] == "fp32"]
    return sorted(fp32, key=lambda pair: pair[0] != backend)


def _reference_runner(bundle: Bundle, backend: str, artifact: dict[str, Any]) -> Any:
    """A runner for a reference artifact that is not itself in the benchmarked matrix (None if it cannot load)."""
    if not backends.is_available(backend):
        return None
    try:
        return backends.load_backend(backend).load(bundle.file(artifact["file"]), 1)
    except Exception as exc:  # the reference is optional: without it the next fp32 artifact is tried
        logger.warning("eyesdk-bench: drift reference %s fp32 cannot load (%s: %s); trying the next fp32 artifact",
                       backend, type(exc).__name__, exc)
        return None


def _peer_quality(peers: Sequence[tuple[Peer, dict[str, Any]]], data: LabelledData, slices: dict[str, np.ndarray],
                  tick: Progress) -> None:
    """Each peer on the same decoded crops as ours, through its own preprocessing."""
    probs = {id(p): np.empty(len(data.samples), dtype=np.float64) for p, _ in peers}
    for i, sample in enumerate(data.samples):
        grey = decode_grey(sample.path)
        for peer, _ in peers:
            probs[id(peer)][i] = peer.prob_open(peer.prepare(grey))[0]
    for peer, result in peers:
        z = accuracy.logits_from_probabilities(probs[id(peer)])
        result.update(accuracy.score(data.y, z, 1.0, 0.5))
        result["breakdown"] = accuracy.breakdown(slices, data.y, z, 1.0, 0.5)
        tick(f"scored peer {peer.name}")


def bench_document(bundle: Bundle, settings: Settings, data: LabelledData | None, entries: Sequence[Planned],
                   peers: Sequence[tuple[Peer, dict[str, Any]]], crop: np.ndarray, crop_source: str, command: str
                   ) -> dict[str, Any]:
    """Phase 7: the ``eyesdk.bench/1`` document of what was measured (gates are added by :func:`run_bench`)."""
    return {
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
            "crop": {"source": crop_source, "height": int(crop.shape[0]), "width": int(crop.shape[1])},
        },
        "data": data.summary() if data is not None else None,
        "results": [e.result for e in entries],
        "peers": [r for _, r in peers],
    }


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
    load_entries(entries, bundle, image, tick)
    peers = load_peers(peer_specs, settings.threads[0], image, tick)
    time_latency(entries, peers, image, settings, tick)
    time_throughput(entries, image, settings, tick)
    _ratios(entries, peers)
    if data is not None:
        score_quality(entries, peers, bundle, data, tick)
    document = bench_document(bundle, settings, data, entries, peers, image, crop_source, command)
    document["gates"] = check_gates(document, gates or Gates())
    return document
