"""Soak: a long stream of ``predict`` calls per backend, watching resident memory and latency over time.

A leak of a few bytes per call (a growing cache, a runtime buffer never released, a reference cycle per call) is
invisible in a latency benchmark of thousands of calls and fatal on a device that runs for weeks. This runs N calls
per backend on one ``EyeState``, in windows of W calls, and reports per window the p50/p99 latency and the resident
set size (RSS, from /proc/self/statm; the peak RSS from getrusage where /proc is absent), then:

- ``rss_growth_mb``: RSS at the end minus RSS after warm-up (target: < 10 MB over 10^6 calls), and
  ``rss_steady_growth_mb``: the same from the end of the first window on (allocators and runtimes settle in the first
  window; what grows after that grows with the number of calls, i.e. is a leak);
- ``drift``: p50 of the last window / p50 of the first (1.0 = no drift), and ``drift_quartiles``: median p50 of the
  last quarter of the windows / median of the first quarter, which one noisy window on a shared machine cannot move;
- ``mismatches``: calls whose logit differed from that crop's first answer (must be 0: same input, same bits).

    eyesdk-bench soak --calls 1000000 --backends tflite,onnxruntime,openvino [--model DIR]
        [--precision fp32] [--window 50000] [--json soak.json] [--max-rss-growth-mb 10]

Exit status 3 (a gate failed) when a backend's RSS growth exceeds ``--max-rss-growth-mb`` or one of its answers
changed.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from eyesdk.formats import PRECISIONS

from . import options
from .gates import EXIT_GATES_FAILED

SCHEMA = "eyesdk.soak/1"
CROP_SIDES = (64, 90, 120)  # around the median MRL crop (~87 px); a few sizes, so more than one resize path runs


def rss_bytes() -> int:
    """Current resident set size. /proc/self/statm where it exists; otherwise peak RSS, an upper bound of growth."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def soak_crops(seed: int = 0) -> list[np.ndarray]:
    """A few uint8 grey and BGR crops of typical sizes (the benchmarks' synthetic eye, with noise per copy)."""
    from .latency import synthetic_crop

    crops: list[np.ndarray] = []
    for i, side in enumerate(CROP_SIDES):
        grey = synthetic_crop(side, seed + i)
        crops += [grey, np.dstack([grey, grey, grey])]
    return crops


@dataclass
class Window:
    calls: int  # calls done when the window closed
    p50_us: float
    p99_us: float
    rss_mb: float


@dataclass
class SoakResult:
    backend: str
    precision: str
    calls: int
    seconds: float
    rss_start_mb: float  # after warm-up and a garbage collection
    rss_end_mb: float  # after the last call and a garbage collection
    rss_growth_mb: float
    rss_max_growth_mb: float  # the largest growth seen at any window's end
    rss_steady_growth_mb: float  # end minus the first window's end: growth once everything has settled
    p50_first_us: float
    p50_last_us: float
    drift: float  # p50_last / p50_first
    drift_quartiles: float  # median p50 of the last quarter of windows / of the first quarter
    mismatches: int
    windows: list[Window] = field(default_factory=list)


def soak(es: Any, crops: Sequence[np.ndarray], calls: int, window: int, warmup: int = 1000) -> SoakResult:
    """Run ``calls`` predictions cycling through ``crops`` and measure each window of ``window`` calls."""
    if calls < 1 or window < 1:
        raise ValueError(f"calls and window must be >= 1, got calls={calls}, window={window}")
    predict, clock = es.predict, time.perf_counter_ns
    expected = [predict(c).logit for c in crops]
    for i in range(warmup):
        predict(crops[i % len(crops)])
    gc.collect()
    start_rss = rss_bytes()
    mb = 1.0 / (1 << 20)
    windows: list[Window] = []
    times = np.empty(window, dtype=np.int64)
    mismatches, done, n_crops = 0, 0, len(crops)
    started = time.perf_counter()
    while done < calls:
        n = min(window, calls - done)
        for j in range(n):
            k = (done + j) % n_crops
            t0 = clock()
            z = predict(crops[k]).logit
            times[j] = clock() - t0
            if z != expected[k]:
                mismatches += 1
        done += n
        p50, p99 = np.percentile(times[:n], [50, 99]) / 1000.0
        windows.append(Window(done, round(float(p50), 2), round(float(p99), 2), round(rss_bytes() * mb, 2)))
    seconds = time.perf_counter() - started
    gc.collect()
    end_rss = rss_bytes()
    first, last = windows[0].p50_us, windows[-1].p50_us
    quarter = max(1, len(windows) // 4)
    head = float(np.median([w.p50_us for w in windows[:quarter]]))
    tail = float(np.median([w.p50_us for w in windows[-quarter:]]))
    return SoakResult(
        backend=es.backend,
        precision=es.precision,
        calls=calls,
        seconds=round(seconds, 2),
        rss_start_mb=round(start_rss * mb, 2),
        rss_end_mb=round(end_rss * mb, 2),
        rss_growth_mb=round((end_rss - start_rss) * mb, 2),
        rss_max_growth_mb=round(max(w.rss_mb for w in windows) - start_rss * mb, 2),
        rss_steady_growth_mb=round(end_rss * mb - windows[0].rss_mb, 2),
        p50_first_us=first,
        p50_last_us=last,
        drift=round(last / first, 3) if first > 0 else float("nan"),
        drift_quartiles=round(tail / head, 3) if head > 0 else float("nan"),
        mismatches=mismatches,
        windows=windows,
    )


def run(
    bundle: Any,
    backends: Sequence[str] | None,
    precision: str = "fp32",
    calls: int = 1_000_000,
    window: int = 50_000,
    warmup: int = 1000,
    threads: int = 1,
    echo: Callable[[str], object] | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Soak every requested backend (default: every installed one) of a loaded bundle in turn: the JSON-ready report."""
    import eyesdk

    chosen = list(backends) if backends else eyesdk.available_backends()
    crops = soak_crops()
    results = []
    for backend in chosen:
        es = eyesdk.EyeState(model=bundle, backend=backend, precision=precision, threads=threads)
        result = soak(es, crops, calls, window, warmup)
        results.append(result)
        if echo:
            echo(f"{backend} {es.precision}: {calls} calls in {result.seconds:.1f} s, "
                 f"RSS {result.rss_growth_mb:+.2f} MB, p50 {result.p50_first_us:.1f} -> {result.p50_last_us:.1f} us")
        del es
        gc.collect()
    return {
        "schema": SCHEMA,
        "bundle": {"name": bundle.name, "path": str(bundle.path), "sha256": bundle.sha256},
        "settings": {"calls": calls, "window": window, "warmup": warmup, "precision": precision, "threads": threads,
                     "crops": [list(c.shape) for c in crops]},
        "host": {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "command": command or " ".join(sys.argv),
        "results": [asdict(r) for r in results],
    }


def format_table(report: dict[str, Any]) -> str:
    """One line per backend: calls, time, RSS end/growth/steady growth, p50 first/last window, drifts, mismatches."""
    head = (f"{'backend':<12} {'prec':<5} {'calls':>9} {'secs':>7} {'RSS MB':>7} {'growth':>7} {'steady':>7} "
            f"{'p50 first':>9} {'p50 last':>8} {'drift':>6} {'quart.':>6} {'mism.':>5}")
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        lines.append(
            f"{r['backend']:<12} {r['precision']:<5} {r['calls']:>9} {r['seconds']:>7.1f} {r['rss_end_mb']:>7.1f} "
            f"{r['rss_growth_mb']:>+7.2f} {r['rss_steady_growth_mb']:>+7.2f} {r['p50_first_us']:>9.1f} "
            f"{r['p50_last_us']:>8.1f} {r['drift']:>6.3f} {r['drift_quartiles']:>6.3f} {r['mismatches']:>5}"
        )
    return "\n".join(lines)


def failures(report: dict[str, Any], max_rss_growth_mb: float) -> list[str]:
    """What breaks the soak's promises: memory growth over the bound, or an answer that changed."""
    found = []
    for r in report["results"]:
        name = f"{r['backend']} {r['precision']}"
        if r["rss_growth_mb"] > max_rss_growth_mb:
            found.append(f"{name}: RSS grew {r['rss_growth_mb']:.2f} MB > {max_rss_growth_mb:g}")
        if r["mismatches"]:
            found.append(f"{name}: {r['mismatches']} answers changed for the same crop")
    return found


@click.command("soak", context_settings=options.CONTEXT)
@options.model
@options.backends
@click.option("--precision", type=click.Choice(["auto", *PRECISIONS]), default="fp32", show_default=True)
@click.option("--calls", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="Predictions per backend.")
@click.option("--window", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="Calls per measurement window.")
@click.option("--warmup", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--max-rss-growth-mb", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Fail (exit 3) when a backend's RSS grows more than this.")
@options.json_out("the full report (every window)")
def command(model: Path | None, backends: tuple[str, ...] | None, precision: str, calls: int, window: int,
            warmup: int, threads: int, max_rss_growth_mb: float, json_path: Path | None) -> None:
    """A long stream of predict calls per backend: resident memory, latency drift, changed answers."""
    from eyesdk.errors import EyeSDKError

    from .schema import write_json

    ctx = click.get_current_context()
    try:
        report = run(options.load_bundle(model), backends, precision, calls, window, warmup, threads,
                     echo=lambda line: click.echo(line, err=True), command=options.command_line(ctx))
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(format_table(report))
    if json_path is not None:
        write_json(json_path, report)
        click.echo(f"wrote {json_path}")
    problems = failures(report, max_rss_growth_mb)
    for problem in problems:
        click.echo(f"GATE FAILED soak: {problem}", err=True)
    if problems:
        ctx.exit(EXIT_GATES_FAILED)
