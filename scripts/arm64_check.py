"""Checks run INSIDE the emulated arm64 root by ``scripts/arm64-smoke`` (also importable on the host for its tests).

Subcommands, each printing ``arm64 ...`` summary lines and exiting non-zero on failure:

- ``parity``: every installed backend loads every artifact of its format in the bundle and reproduces the bundle's
  x86 build-time ``reference_logits`` on ``probe.npy`` within that artifact's ``tolerance``; then ``auto`` must pick an
  installed backend, namely the first of ``eyesdk.selection.ARM_ORDER`` that is installed and shipped.
- ``crops``: write a few synthetic open / closed eye crops as PNG files for ``eyesdk predict``.
- ``bench``: read an ``eyesdk-bench --quick --json`` document and report its parity verdicts (never its timings).
- ``tune``: read ``eyesdk tune --json`` output and check that ``auto`` now follows the cached choice.
- ``sizes``: installed size of each distribution in this environment, from the files its RECORD lists.

The logit comparison is written here rather than borrowed from ``eyesdk.selection``: a smoke test that judges the
runtime with the runtime's own verdict function would pass whenever that function is wrong in the same way.
Emulated timings are 100-300x off and distort rankings, so nothing here prints a time as a speed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TOLERANCE = 1e-3  # what eyesdk assumes when an artifact states no tolerance


@dataclass(frozen=True)
class Comparison:
    """One artifact's logits on the probe against the reference recorded when the bundle was built."""

    ok: bool
    max_abs_diff: float | None  # None when the shapes differ or a logit is not finite
    tolerance: float
    reason: str = ""


def compare_logits(reference: Any, got: Any, tolerance: float = DEFAULT_TOLERANCE) -> Comparison:
    """Max |got - reference| over the probe, and whether it stays within ``tolerance``."""
    expected = np.asarray(reference, dtype=np.float64).reshape(-1)
    actual = np.asarray(got, dtype=np.float64).reshape(-1)
    tolerance = float(tolerance)
    if expected.size == 0:
        return Comparison(False, None, tolerance, "the manifest has no reference logits")
    if actual.shape != expected.shape:
        return Comparison(False, None, tolerance, f"{actual.size} logits for {expected.size} reference values")
    if not np.isfinite(actual).all():
        return Comparison(False, None, tolerance, "non-finite logits")
    diff = float(np.max(np.abs(actual - expected)))
    if not math.isfinite(diff) or diff > tolerance:
        return Comparison(False, diff, tolerance, f"|dlogit| {diff:.3g} > tolerance {tolerance:.3g}")
    return Comparison(True, diff, tolerance)


def compare_artifact(artifact: dict[str, Any], got: Any) -> Comparison:
    """Compare a runner's probe logits with a manifest ``artifacts`` entry."""
    reference = artifact.get("reference_logits")
    tolerance = float(artifact.get("tolerance", DEFAULT_TOLERANCE))
    if not reference:
        return Comparison(False, None, tolerance, "the manifest has no reference_logits for this artifact")
    return compare_logits(reference, got, tolerance)


@dataclass
class BackendReport:
    """What one backend did with every artifact of its format in the bundle.

    ``known`` lists artifacts ("openvino int8") already known to fail on this platform: their failure is reported on
    every run but does not fail the check, and one that starts matching is pointed out so the entry can go.
    """

    backend: str
    installed: bool
    results: dict[str, Comparison] = field(default_factory=dict)  # "fmt precision" -> comparison
    known: frozenset[str] = frozenset()

    @property
    def matched(self) -> int:
        return sum(c.ok for c in self.results.values())

    @property
    def known_failed(self) -> list[str]:
        return [key for key, c in self.results.items() if not c.ok and key in self.known]

    @property
    def ok(self) -> bool:
        return self.installed and self.matched > 0 and self.matched + len(self.known_failed) == len(self.results)

    def summary(self, prefix: str = "arm64") -> list[str]:
        """One line per backend, then one indented line per artifact that did not match."""
        if not self.installed:
            return [f"{prefix} {self.backend}: not installed"]
        if not self.results:
            return [f"{prefix} {self.backend}: the bundle ships no artifact for it"]
        diffs = {key: c.max_abs_diff for key, c in self.results.items() if c.max_abs_diff is not None}
        top = max(diffs, key=diffs.__getitem__) if diffs else None
        worst = f"max |dlogit| {diffs[top]:.2g} on {top}" if top else "no comparable logits"
        verdict = "match reference" if self.matched == len(self.results) else "MISMATCH" if not self.ok else "match"
        known = f", {len(self.known_failed)} known failure" if self.known_failed else ""
        lines = [f"{prefix} {self.backend}: {self.matched}/{len(self.results)} artifacts {verdict} ({worst}{known})"]
        for key, c in self.results.items():
            if not c.ok:
                lines.append(f"    {key}: {'KNOWN FAILURE: ' if key in self.known else ''}{c.reason}")
            elif key in self.known:
                lines.append(f"    {key}: listed as a known failure but matches now; drop it from the list")
        return lines


def check_backend(bundle: Any, backend: str, threads: int = 1, known: Sequence[str] = ()) -> BackendReport:
    """Load every artifact of ``backend``'s format with the bare runner and compare its probe logits."""
    from eyesdk import backends
    from eyesdk.formats import BACKEND_FORMAT

    report = BackendReport(backend, backends.is_available(backend), known=frozenset(known))
    if not report.installed:
        return report
    probe = bundle.probe()
    for artifact in bundle.artifacts:
        if artifact["format"] != BACKEND_FORMAT[backend]:
            continue
        key = f"{artifact['format']} {artifact['precision']}"
        if probe is None:
            report.results[key] = Comparison(False, None, DEFAULT_TOLERANCE, "the bundle has no probe inputs")
            continue
        try:
            runner = backends.load_backend(backend).load(bundle.artifact_files(artifact), threads)
            got = runner.run(np.ascontiguousarray(probe))
        except Exception as exc:  # a smoke test reports every failure, whatever the runtime raised
            report.results[key] = Comparison(False, None, 0.0, f"failed: {type(exc).__name__}: {exc}")
            continue
        report.results[key] = compare_artifact(artifact, got)
    return report


def expected_auto_choice(bundle: Any, installed: Sequence[str], order: Sequence[tuple[str, str]]
                         ) -> tuple[str, str] | None:
    """The first (backend, precision) of ``order`` that is installed and shipped: what ``auto`` must pick."""
    from eyesdk.formats import BACKEND_FORMAT

    for backend, precision in order:
        if backend in installed and bundle.artifact(BACKEND_FORMAT[backend], precision) is not None:
            return backend, precision
    return None


def _load(model: str | None) -> Any:
    from eyesdk.bundle import load_bundle, load_default_bundle

    return load_bundle(model) if model else load_default_bundle()


def cmd_parity(args: argparse.Namespace) -> int:
    from eyesdk import EyeState, available_backends
    from eyesdk.device import probe
    from eyesdk.formats import BACKENDS
    from eyesdk.selection import ARM_ORDER, default_order

    prefix = args.prefix
    device = probe()
    bundle = _load(args.model)
    failures: list[str] = []
    print(f"{prefix} device: {device.arch}, {device.cpu_model}, CPU features {' '.join(device.cpu_flags)}; "
          f"bundle {bundle.name} ({len(bundle.artifacts)} artifacts, sha256 {bundle.sha256[:12]})")
    if not device.is_arm:
        failures.append(f"eyesdk sees arch {device.arch!r}, not ARM: the emulation is not in effect")
    reports = [check_backend(bundle, b, args.threads, args.known_failure) for b in BACKENDS]
    for report in reports:
        for line in report.summary(prefix):
            print(line)
        if report.installed and not report.ok:
            failures.append(f"{report.backend}: artifacts do not reproduce the reference")
    for backend in args.expect:
        if backend not in available_backends():
            failures.append(f"{backend} was installed from its aarch64 wheel but eyesdk cannot find it")
    installed = available_backends()
    if not any(r.results for r in reports):
        failures.append("no backend ran any artifact")
    if default_order(device) != ARM_ORDER:
        failures.append("auto does not use the ARM order on this device")
    want = expected_auto_choice(bundle, installed, ARM_ORDER)
    try:
        es = EyeState(model=bundle)
    except Exception as exc:
        failures.append(f"auto failed: {type(exc).__name__}: {exc}")
    else:
        got = (es.backend, es.precision)
        note = "" if got == want else f" (expected {want[0]} {want[1]} from ARM_ORDER)" if want else ""
        print(f"{prefix} auto: {got[0]} {got[1]} with {', '.join(installed)} installed{note}")
        if es.backend not in installed:
            failures.append(f"auto picked {es.backend}, which is not installed")
        elif got != want:
            failures.append(f"auto picked {got[0]} {got[1]}; the ARM order says {want}")
    return _finish(failures, prefix)


def _finish(failures: list[str], prefix: str = "arm64") -> int:
    for failure in failures:
        print(f"{prefix} FAILED: {failure}")
    return 1 if failures else 0


def synthetic_eye(is_open: bool, rng: np.random.Generator, height: int = 48, width: int = 72) -> np.ndarray:
    """A grey eye-like crop: skin, lids, and a dark iris when open, a dark lash line when closed."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = height / 2 + rng.uniform(-2, 2), width / 2 + rng.uniform(-3, 3)
    image = np.full((height, width), rng.uniform(150, 200), np.float32)
    lids = ((xx - cx) / (0.42 * width)) ** 2 + ((yy - cy) / (0.28 * height)) ** 2 <= 1
    if is_open:
        image[lids] = rng.uniform(215, 240)  # sclera
        iris = (xx - cx) ** 2 + (yy - cy) ** 2 <= (0.2 * height) ** 2
        image[iris] = rng.uniform(40, 80)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= (0.08 * height) ** 2] = 10
    else:
        line = (np.abs(yy - cy - 0.02 * (xx - cx) ** 2 / width * 4) < 1.5) & lids
        image[line] = rng.uniform(20, 50)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def cmd_crops(args: argparse.Namespace) -> int:
    from PIL import Image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(args.count):
        is_open = i % 2 == 0
        path = out / f"{'open' if is_open else 'closed'}_{i}.png"
        Image.fromarray(synthetic_eye(is_open, rng)).save(path)
        print(path)
    return 0


def bench_parity_lines(document: dict[str, Any], known: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Summary lines and failures from an ``eyesdk.bench/1`` document's parity verdicts (timings left out)."""
    from eyesdk.formats import BACKEND_FORMAT

    results = document.get("results") or []
    per_backend: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        per_backend.setdefault(result["backend"], []).append(result)
    lines, failures = [], []
    for backend, rows in per_backend.items():
        ok = [r for r in rows if (r.get("parity") or {}).get("ok") is True]
        bad = [r for r in rows if r not in ok]
        expected = [r for r in bad if f"{BACKEND_FORMAT.get(backend, backend)} {r['precision']}" in known]
        note = f" ({len(expected)} known failure)" if expected else ""
        lines.append(f"arm64 eyesdk-bench --quick {backend}: parity ok for {len(ok)}/{len(rows)} artifacts{note}")
        for r in bad:
            if r in expected:
                continue
            parity = r.get("parity") or {}
            why = r.get("error") or f"parity {parity.get('ok')} (|dlogit| {parity.get('max_abs_diff')})"
            failures.append(f"eyesdk-bench {backend} {r['precision']}: {why}")
    if not results:
        failures.append("eyesdk-bench measured nothing")
    return lines, failures


def cmd_bench(args: argparse.Namespace) -> int:
    document = json.loads(Path(args.json).read_text(encoding="utf-8"))
    lines, failures = bench_parity_lines(document, args.known_failure)
    for line in lines:
        print(line)
    return _finish(failures)


def cmd_tune(args: argparse.Namespace) -> int:
    from eyesdk import EyeState

    data = json.loads(Path(args.json).read_text(encoding="utf-8"))
    choice = (data["backend"], data["precision"])
    timed = sorted(data.get("p50_us") or {})
    print(f"arm64 eyesdk tune: chose {choice[0]} {choice[1]} among {len(timed)} candidates "
          f"(emulated timings: they prove the tuner runs, not which is faster on a Pi)")
    failures = []
    es = EyeState(model=args.model or None)
    if (es.backend, es.precision) != choice:
        failures.append(f"auto ignores the tuned choice: picked {es.backend} {es.precision}, tune chose {choice}")
    else:
        print(f"arm64 auto after tune: {es.backend} {es.precision} (follows the cached choice)")
    return _finish(failures)


def installed_sizes() -> dict[str, int]:
    """Bytes on disk of each installed distribution, summed over the files its RECORD lists."""
    from importlib import metadata

    sizes: dict[str, int] = {}
    for dist in metadata.distributions():
        total = 0
        for entry in dist.files or ():
            path = Path(str(dist.locate_file(entry)))
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        name = dist.metadata["Name"]
        sizes[name] = sizes.get(name, 0) + total
    return sizes


def cmd_sizes(args: argparse.Namespace) -> int:
    sizes = installed_sizes()
    total = sum(sizes.values())
    shown = sorted(((n, s) for n, s in sizes.items() if s >= args.min_mb * 1e6), key=lambda item: -item[1])
    parts = ", ".join(f"{name} {size / 1e6:.1f}" for name, size in shown)
    print(f"arm64 installed MB ({args.label}): total {total / 1e6:.1f}; {parts}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    parity = sub.add_parser("parity", help="every backend x artifact against the reference logits, then auto")
    parity.add_argument("--model", default=None, help="bundle directory (default: the embedded bundle)")
    parity.add_argument("--threads", type=int, default=1)
    parity.add_argument("--prefix", default="arm64", help="start of every summary line, e.g. 'arm64 cortex-a72'")
    parity.add_argument("--expect", default="", type=lambda s: [b for b in s.split(",") if b],
                        help="comma list of backends that were installed and must be found")
    parity.add_argument("--known-failure", action="append", default=[], metavar="'FORMAT PRECISION'",
                        help="an artifact known to fail on this platform: reported, not fatal (repeatable)")
    parity.set_defaults(run=cmd_parity)
    crops = sub.add_parser("crops", help="write synthetic eye crops as PNG files")
    crops.add_argument("out")
    crops.add_argument("--count", type=int, default=4)
    crops.set_defaults(run=cmd_crops)
    bench = sub.add_parser("bench", help="parity verdicts of an eyesdk-bench --json document")
    bench.add_argument("json")
    bench.add_argument("--known-failure", action="append", default=[], metavar="'FORMAT PRECISION'")
    bench.set_defaults(run=cmd_bench)
    tune = sub.add_parser("tune", help="check that auto follows `eyesdk tune --json` output")
    tune.add_argument("json")
    tune.add_argument("--model", default=None)
    tune.set_defaults(run=cmd_tune)
    sizes = sub.add_parser("sizes", help="installed size per distribution")
    sizes.add_argument("--label", default="venv")
    sizes.add_argument("--min-mb", type=float, default=0.5)
    sizes.set_defaults(run=cmd_sizes)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
