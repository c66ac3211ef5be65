"""Checks run INSIDE the emulated arm64 root by ``scripts/arm64-smoke`` (also importable on the host for its tests).

Subcommands, each printing ``arm64 ...`` summary lines and exiting non-zero on failure:

- ``parity``: every installed backend loads every artifact of its format in the bundle and reproduces the bundle's
  x86 build-time ``reference_logits`` on ``probe.npy`` within that artifact's ``tolerance``; then ``auto`` must pick an
  installed backend, namely the first of ``eyesdk.selection.ARM_ORDER`` that is installed and shipped.
- ``crops``: write a few synthetic open / closed eye crops as PNG files for ``eyesdk predict``.
- ``bench``: read an ``eyesdk-bench --quick --json`` document and report its parity verdicts (never its timings).
- ``tune``: read ``eyesdk tune --json`` output and check that ``auto`` now follows the cached choice.
- ``sizes``: installed size of each distribution in this environment, from the files its RECORD lists.
- ``stream-reference`` (on the HOST, the x86 .venv) and ``stream`` (in the root): the end-to-end ``EyeStream`` as
  parity only (issue 10). The host replays one scripted timeline of synthetic (left, right) crop pairs through
  ``EyeStream(locator=None)`` on every backend it has, and, when the landmark locator's models are there, locates the
  eyes on real frames (scikit-image's astronaut.png) and runs the whole stream on a short clip of it; it writes what
  came out, with the inputs, into a folder. The root replays the same inputs and must agree: states, events (kind,
  start, end), alarms and PERCLOS exactly, logits within the artifact's parity tolerance, eye locations within
  ``LOCATOR_TOLERANCE_PX``.

The logit comparison is written here rather than borrowed from ``eyesdk.selection``: a smoke test that judges the
runtime with the runtime's own verdict function would pass whenever that function is wrong in the same way.
Emulated timings are 100-300x off and distort rankings, so nothing here prints a time as a speed.
"""

from __future__ import annotations

import argparse
import contextlib
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


# ------------------------------------------------------------------------------------------------ stream parity
# Decisions (states, events, alarms, PERCLOS) are functions of the input timestamps and of logits far from every
# threshold, so they must agree exactly; logits agree within the artifact's parity tolerance (compared as logits,
# the quantity that tolerance is stated in: prob_open is their sigmoid, and the logit is the better conditioned of
# the two near 0 and 1); eye locations within a few tenths of a pixel.

STREAM_SCHEMA = "eyesdk.arm64-stream/1"
STREAM_REFERENCE = "reference.json"
STREAM_ARRAYS = "inputs.npz"
STREAM_MODELS = "locator-models"
STREAM_PRECISION = "fp32"
STREAM_FPS = 30.0
STREAM_POOL = 6  # synthetic crops per (side, state), drawn at random along the timeline
STREAM_WINDOW_S = 6.0  # a short trailing window, so the scenario reaches PERCLOS, the blink rate and "drowsy"
GAP = "gap"
# (seconds, left eye, right eye): "open", "closed", None (no crop for that eye), or GAP (no frames at all)
STREAM_SCRIPT: tuple[tuple[float, str | None, str | None], ...] = (
    (2.5, "open", "open"),  # the person's open level first
    (0.2, "closed", "closed"),  # blink
    (1.0, "open", "open"),
    (0.7, "closed", "closed"),  # long blink
    (1.0, "open", "open"),
    (1.6, "closed", "closed"),  # microsleep: alarm 1 s in, the event when the eyes reopen; PERCLOS goes drowsy
    (0.8, "open", "open"),
    (0.4, "closed", "closed"),  # a closure cut by the gap: ends as unknown, no event
    (1.0, GAP, GAP),
    (0.8, "open", "open"),
    (0.5, None, None),  # no eye at all: unknown, never closed
    (0.8, "open", None),  # one eye is enough
    (0.3, "closed", None),  # ... for a blink too
    (0.8, "open", "open"),
    (0.5, "closed", "closed"),  # still closed at close(): completed there, clipped
)
DROP_EVERY = 37  # every 37th frame is dropped, as cameras do
JITTER_FRAMES = 0.3  # timestamp jitter, in frame periods (keeps timestamps strictly increasing)
CLIP_FRAMES = 5
CLIP_STEP = (3, 2)  # pixels the face moves per clip frame (x, y)
LOCATOR_TOLERANCE_PX = 0.5  # eye centre and width; tflite and openvino on x86 agree to this (tests/locators)
ANGLE_TOLERANCE = 0.01  # eye roll, radians (0.6 degrees)
BOX_TOLERANCE_PX = 1  # crop boxes are whole pixels (floor / ceil of the square): a hair's move changes one by 1
# On the clip the locator tracks: each frame's landmarks place the next frame's face region, which the mesh samples
# nearest-neighbour, so a tiny difference grows along the clip. On x86 the tflite and openvino locators put the eyes
# 0.0006 px apart on the clip's first frame, 0.43 px apart on its fifth and 0.57 px on an eighth; over these five
# frames their prob_open values differ by up to 0.008 (logits by up to 0.64 where the model is sure). So the clip is
# held to prob_open and to boxes within 2 px, not to the artifact's logit tolerance (single frames, searched from
# scratch, are held to 0.5 px).
CLIP_PROB_TOLERANCE = 0.05
CLIP_BOX_TOLERANCE_PX = 2
EXACT = 1e-9  # PERCLOS and blinks/min are arithmetic on timestamps: equal up to summation order


def stream_timeline(seed: int = 0) -> list[tuple[float, Any, Any]]:
    """The crop half's scenario: (t, left, right) per update; an eye is (is_open, pool index) or None."""
    rng = np.random.default_rng(seed)
    timeline, clock, frame = [], 0.0, 0
    for seconds, *eyes in STREAM_SCRIPT:
        if GAP in eyes:
            clock += seconds
            continue
        for _ in range(round(seconds * STREAM_FPS)):
            t = clock + rng.uniform(-JITTER_FRAMES, JITTER_FRAMES) / STREAM_FPS
            clock += 1 / STREAM_FPS
            frame += 1
            if frame % DROP_EVERY == 0:
                continue
            pair = [None if e is None else (e == "open", int(rng.integers(STREAM_POOL))) for e in eyes]
            timeline.append((round(t, 6), *pair))
    return timeline


def stream_crops(seed: int = 0) -> np.ndarray:
    """The crop pool, indexed [side (0 left, 1 right)][is_open][k]: uint8 (2, 2, STREAM_POOL, 48, 72)."""
    rng = np.random.default_rng(seed)
    return np.stack([np.stack([np.stack([synthetic_eye(bool(is_open), rng) for _ in range(STREAM_POOL)])
                               for is_open in (0, 1)]) for _ in range(2)])


def shifted_clip(frame: np.ndarray, count: int = CLIP_FRAMES, step: tuple[int, int] = CLIP_STEP) -> list[np.ndarray]:
    """A short clip: ``frame`` moved by whole pixels each frame, its edge repeated (exact on any CPU)."""
    h, w = frame.shape[:2]
    pad = ((0, 0),) * (frame.ndim - 2)
    return [np.ascontiguousarray(np.pad(frame, ((i * step[1], 0), (i * step[0], 0), *pad), mode="edge")[:h, :w])
            for i in range(count)]


def _stream_config() -> Any:
    from eyesdk.stream import stream_config

    # A parity check, not a model check: a shallow confirmation depth keeps the scenario's closures events whatever
    # the shipped model makes of synthetic closed eyes (the default model puts them at calibrated logits of -3 to -4.5).
    return stream_config(window={"window": STREAM_WINDOW_S}, events={"confirm_depth": 0.3, "core_depth": 0.3})


def _event(event: Any) -> list[Any]:
    return [event.kind, event.start, event.end, event.side, event.clipped]


def record_update(update: Any) -> dict[str, Any]:
    """What a StreamUpdate decided and measured, as JSON values (floats unrounded: JSON keeps them exact)."""
    return {
        "t": update.timestamp,
        "state": update.state,
        "events": [_event(e) for e in update.events],
        "alarms": [[a.kind, a.since, a.new] for a in update.alarms],
        "perclos": update.perclos,
        "blinks_per_minute": update.blinks_per_minute,
        "eyes": {e.side: {"valid": e.valid, "reason": e.reason, "logit": e.logit, "prob_open": e.prob_open,
                          "box": None if e.box is None else list(e.box)} for e in update.eyes},
    }


def _run_stream(stream: Any, inputs: Sequence[tuple[float, Any]]) -> dict[str, Any]:
    updates = [record_update(stream.update(frame, t)) for t, frame in inputs]
    return {"updates": updates, "close": [_event(e) for e in stream.close()]}


def replay_crops(eye_state: Any, timeline: Sequence[Sequence[Any]], crops: np.ndarray) -> dict[str, Any]:
    """EyeStream(locator=None) over the timeline: (left, right) crop pairs from the pool."""
    from eyesdk.stream import EyeStream

    def pair(left: Any, right: Any) -> tuple[Any, Any]:
        return tuple(None if eye is None else crops[side][int(eye[0])][int(eye[1])]
                     for side, eye in enumerate((left, right)))

    stream = EyeStream(locator=None, eye_state=eye_state, config=_stream_config())
    return _run_stream(stream, [(t, pair(left, right)) for t, left, right in timeline])


def replay_clip(eye_state: Any, locator: Any, frames: Sequence[np.ndarray]) -> dict[str, Any]:
    """The whole EyeStream (locator, crops, classifier, events) over a clip at STREAM_FPS."""
    from eyesdk.stream import EyeStream

    stream = EyeStream(locator=locator, eye_state=eye_state, config=_stream_config())
    return _run_stream(stream, [(i / STREAM_FPS, frame) for i, frame in enumerate(frames)])


def locate_frames(locator: Any, frames: Sequence[np.ndarray]) -> list[list[dict[str, Any]]]:
    """Each frame searched from scratch: every eye's centre, width, roll and the stream's crop box."""
    from eyesdk.locators.crop import crop_eye

    recipe = _stream_config().crop
    found = []
    for frame in frames:
        locator.reset()
        found.append([{"side": e.side, "center": [float(c) for c in e.center], "width": float(e.width),
                       "angle": float(e.angle), "box": list(crop_eye(frame, e, recipe).box)}
                      for e in locator.locate(frame)])
    return found


def astronaut_frames() -> list[np.ndarray] | None:
    """scikit-image's astronaut.png (public domain) in a 640 x 480 BGR frame, and the same rolled by 12 degrees.

    None when scikit-image is not installed. The frame is built as the locator tests build it (tests/face_paths.py).
    """
    import importlib.util

    from PIL import Image

    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        return None
    with Image.open(Path(spec.origin).parent / "data" / "astronaut.png") as image:
        rgb = np.asarray(image.convert("RGB"))
    frame = np.full((480, 640, 3), 40, np.uint8)
    frame[:, 64:576] = rgb[16:496, :, ::-1]
    rolled = Image.fromarray(frame).rotate(12.0, resample=Image.BILINEAR, fillcolor=(40, 40, 40))
    return [frame, np.asarray(rolled).copy()]


def find_locator_models(candidates: Sequence[str]) -> Path | None:
    """The first folder holding the landmark locator's files; the user cache (eyesdk models fetch-locator) last."""
    from eyesdk.locators import models

    folders = [Path(c) for c in candidates]
    with contextlib.suppress(FileNotFoundError):  # no cache directory on this machine
        folders.append(models.models_dir())
    return next((f for f in folders if not models.missing(root=f)), None)


def _locator_backends() -> list[str]:
    from eyesdk import backends
    from eyesdk.locators.runner import ORDER

    return [b for b in ORDER if backends.is_available(b)]


def _write_json(path: Path, document: dict[str, Any]) -> None:
    from eyesdk.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(document, indent=1) + "\n")


def cmd_stream_reference(args: argparse.Namespace) -> int:
    """HOST half: run the scenario on every backend here and write the inputs and what came out into args.out."""
    import shutil

    from eyesdk import EyeState, backends
    from eyesdk.atomic import atomic_write
    from eyesdk.formats import BACKENDS
    from eyesdk.locators import MediaPipeLocator
    from eyesdk.locators.models import LOCATOR_FILES, MODEL_FILES

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = _load(args.model)
    timeline = stream_timeline(args.seed)
    crops = stream_crops(args.seed)
    states = {b: EyeState(model=bundle, backend=b, precision=STREAM_PRECISION)
              for b in BACKENDS if backends.is_available(b)}
    document: dict[str, Any] = {
        "schema": STREAM_SCHEMA, "bundle": bundle.sha256, "precision": STREAM_PRECISION, "timeline": timeline,
        "crops": {b: replay_crops(es, timeline, crops) for b, es in states.items()},
        "locator": None, "clip": None,
    }
    arrays = {"crops": crops}
    models = find_locator_models(args.locator_models)
    frames = astronaut_frames() if models is not None else None
    if models is None or frames is None:
        why = "no landmark locator models on the host (eyesdk models fetch-locator)" if models is None else \
            "scikit-image (astronaut.png) is not installed on the host"
        print(f"arm64-smoke: NOTE: {why}: the stream check's locator half is skipped; the crop half runs")
    else:
        copy = out / STREAM_MODELS
        copy.mkdir(exist_ok=True)
        for key in LOCATOR_FILES:
            shutil.copyfile(models / MODEL_FILES[key].filename, copy / MODEL_FILES[key].filename)
        locators = {b: MediaPipeLocator(models=copy, backend=b) for b in _locator_backends()}
        document["locator"] = {b: locate_frames(loc, frames) for b, loc in locators.items()}
        clip_locator = MediaPipeLocator(models=copy)
        clip = shifted_clip(frames[0])
        document["clip"] = {"locator_backend": clip_locator.backend,
                            "runs": {b: replay_clip(es, clip_locator, clip) for b, es in states.items()}}
        arrays["frames"] = np.stack(frames)
    atomic_write(out / STREAM_ARRAYS, lambda handle: np.savez_compressed(handle, **arrays))
    _write_json(out / STREAM_REFERENCE, document)
    first = next(iter(document["crops"].values()), {"updates": [], "close": []})
    events = sum(len(u["events"]) for u in first["updates"]) + len(first["close"])
    print(f"arm64 stream reference (host): {len(timeline)} crop updates ({events} events) on "
          f"{', '.join(states) or 'no backend'}; locator half "
          f"{'on ' + ', '.join(document['locator']) if document['locator'] else 'skipped'}")
    return 0 if states else 1


@dataclass
class _Differences:
    """One named line per problem found; none is a pass."""

    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class StreamDiff(_Differences):
    """How one replay differs from the host's: counts for the summary, and the problems."""

    updates: int = 0
    matched: int = 0
    events: int = 0
    alarms: int = 0  # alarms raised (new) in the reference
    max_dlogit: float = 0.0  # raw logit units, as the artifact tolerance
    max_dprob: float = 0.0
    max_box_px: int = 0


def _events_text(events: Sequence[Sequence[Any]]) -> str:
    return ", ".join(f"{e[0]} {e[1]:.3f}-{e[2]:.3f}" + (" clipped" if e[4] else "") for e in events) or "none"


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    return (a is None) == (b is None) and (a is None or abs(a - b) <= tolerance)


@dataclass(frozen=True)
class Tolerance:
    """How far an eye's numbers may move: raw logits (calibrated x temperature), prob_open, crop box (pixels)."""

    logit: float = math.inf
    prob: float = math.inf
    temperature: float = 1.0
    box: int = BOX_TOLERANCE_PX

    def __str__(self) -> str:
        parts = [f"|dlogit| {self.logit:.2g}"] if math.isfinite(self.logit) else []
        parts += [f"|dprob_open| {self.prob:.2g}"] if math.isfinite(self.prob) else []
        return ", ".join(parts) or "none"


def _update_problems(i: int, ref: dict[str, Any], got: dict[str, Any], tolerance: Tolerance,
                     diff: StreamDiff) -> list[str]:
    where = f"update {i} (t={ref['t']:.3f})"
    problems = []
    if got["t"] != ref["t"]:
        problems.append(f"{where}: timestamp {got['t']!r}, reference {ref['t']!r}")
    if got["state"] != ref["state"]:
        problems.append(f"{where}: state {got['state']}, reference {ref['state']}")
    if got["events"] != ref["events"]:
        problems.append(f"{where}: events {_events_text(got['events'])}, reference {_events_text(ref['events'])}")
    if got["alarms"] != ref["alarms"]:
        problems.append(f"{where}: alarms {got['alarms']}, reference {ref['alarms']}")
    for key in ("perclos", "blinks_per_minute"):
        if not _close(got[key], ref[key], EXACT):
            problems.append(f"{where}: {key} {got[key]}, reference {ref[key]}")
    if set(got["eyes"]) != set(ref["eyes"]):
        problems.append(f"{where}: eyes {sorted(got['eyes'])}, reference {sorted(ref['eyes'])}")
        return problems
    for side, want in ref["eyes"].items():
        have = got["eyes"][side]
        if (have["valid"], have["reason"]) != (want["valid"], want["reason"]):
            problems.append(f"{where} {side}: valid {have['valid']} ({have['reason']}), reference "
                            f"{want['valid']} ({want['reason']})")
            continue
        if want["logit"] is not None:
            dlogit = abs(have["logit"] - want["logit"]) * tolerance.temperature
            dprob = abs(have["prob_open"] - want["prob_open"])
            diff.max_dlogit, diff.max_dprob = max(diff.max_dlogit, dlogit), max(diff.max_dprob, dprob)
            if not (dlogit <= tolerance.logit and dprob <= tolerance.prob):
                problems.append(f"{where} {side}: prob_open {have['prob_open']:.6f}, reference "
                                f"{want['prob_open']:.6f} (|dlogit| {dlogit:.3g}, |dprob_open| {dprob:.3g}; "
                                f"tolerance {tolerance})")
        if (have["box"] is None) != (want["box"] is None):
            problems.append(f"{where} {side}: box {have['box']}, reference {want['box']}")
        elif want["box"] is not None:
            dbox = max(abs(a - b) for a, b in zip(have["box"], want["box"], strict=True))
            diff.max_box_px = max(diff.max_box_px, dbox)
            if dbox > tolerance.box:
                problems.append(f"{where} {side}: box {have['box']}, reference {want['box']} (> {tolerance.box} px)")
    return problems


def compare_stream(reference: dict[str, Any], got: dict[str, Any], tolerance: Tolerance) -> StreamDiff:
    """Update by update: decisions exactly, each eye's logit and prob_open within the tolerance."""
    ref_updates, got_updates = reference["updates"], got["updates"]
    diff = StreamDiff(updates=len(ref_updates))
    for i, ref in enumerate(ref_updates):
        diff.events += len(ref["events"])
        diff.alarms += sum(1 for alarm in ref["alarms"] if alarm[2])
        if i >= len(got_updates):
            diff.problems.append(f"update {i} (t={ref['t']:.3f}): missing from the replay")
            continue
        problems = _update_problems(i, ref, got_updates[i], tolerance, diff)
        diff.matched += not problems
        diff.problems += problems
    if len(got_updates) > len(ref_updates):
        diff.problems.append(f"{len(got_updates) - len(ref_updates)} updates more than the reference's "
                             f"{len(ref_updates)}")
    diff.events += len(reference["close"])
    if got["close"] != reference["close"]:
        diff.problems.append(f"close(): events {_events_text(got['close'])}, reference "
                             f"{_events_text(reference['close'])}")
    return diff


@dataclass
class LocatorDiff(_Differences):
    """How the eye locations on the frames differ from the host's."""

    frames: int = 0
    eyes: int = 0
    matched: int = 0
    max_center_px: float = 0.0
    max_box_px: int = 0


def compare_locations(reference: Sequence[Sequence[dict[str, Any]]], got: Sequence[Sequence[dict[str, Any]]]
                      ) -> LocatorDiff:
    """Per frame, the same sides found, each eye's centre / width within LOCATOR_TOLERANCE_PX, roll and box too."""
    diff = LocatorDiff(frames=len(reference))
    if len(got) != len(reference):
        diff.problems.append(f"{len(got)} frames located, reference {len(reference)}")
    for i, (want, have) in enumerate(zip(reference, got, strict=False)):
        diff.eyes += len(want)
        if [e["side"] for e in have] != [e["side"] for e in want]:
            diff.problems.append(f"frame {i}: eyes {[e['side'] for e in have]}, reference {[e['side'] for e in want]}")
            continue
        for a, b in zip(have, want, strict=True):
            where = f"frame {i} {b['side']} eye"
            centre = math.hypot(a["center"][0] - b["center"][0], a["center"][1] - b["center"][1])
            dbox = max(abs(p - q) for p, q in zip(a["box"], b["box"], strict=True))
            diff.max_center_px, diff.max_box_px = max(diff.max_center_px, centre), max(diff.max_box_px, dbox)
            problems = []
            if not centre <= LOCATOR_TOLERANCE_PX:
                problems.append(f"{where}: centre {centre:.3g} px from the reference (> {LOCATOR_TOLERANCE_PX} px)")
            if not abs(a["width"] - b["width"]) <= LOCATOR_TOLERANCE_PX:
                problems.append(f"{where}: width {a['width']:.2f}, reference {b['width']:.2f} px")
            if not abs(a["angle"] - b["angle"]) <= ANGLE_TOLERANCE:
                problems.append(f"{where}: roll {a['angle']:.4f}, reference {b['angle']:.4f} rad")
            if dbox > BOX_TOLERANCE_PX:
                problems.append(f"{where}: box {a['box']}, reference {b['box']} (> {BOX_TOLERANCE_PX} px)")
            diff.matched += not problems
            diff.problems += problems
    return diff


SHOWN_PROBLEMS = 6  # named problem lines printed per check; the rest are counted


def _verdict_lines(head: str, diffs: Sequence[Any], known: bool) -> tuple[list[str], bool]:
    """The summary line, then the named problems (marked as known); and whether the check passes."""
    problems = [p for d in diffs for p in d.problems]
    lines = [head]
    mark = "KNOWN FAILURE: " if known else ""
    lines += [f"    {mark}{p}" for p in problems[:SHOWN_PROBLEMS]]
    if len(problems) > SHOWN_PROBLEMS:
        lines.append(f"    {mark}... and {len(problems) - SHOWN_PROBLEMS} more")
    if known and not problems:
        lines.append("    listed as a known failure but matches now; drop it from the list")
    return lines, known or not problems


def stream_backend_lines(backend: str, crops: StreamDiff, clip: StreamDiff | None, tolerance: float,
                         prefix: str = "arm64", known: bool = False) -> tuple[list[str], bool]:
    """tolerance: the artifact's (raw logits), which the crop half is held to."""
    """``<prefix> stream <backend>: ...`` for the crop half and the clip, and whether the check passes."""
    verdict = "match" if crops.ok and (clip is None or clip.ok) else "MISMATCH"
    head = (f"{prefix} stream {backend}: {verdict}: crops {crops.matched}/{crops.updates} updates "
            f"({crops.events} events, {crops.alarms} alarms raised: exact; max |dlogit| {crops.max_dlogit:.2g}, "
            f"tolerance {tolerance:.2g})")
    if clip is None:
        head += "; clip skipped (no locator reference)"
    else:
        head += (f"; clip {clip.matched}/{clip.updates} frames (max |dprob_open| {clip.max_dprob:.2g}, tolerance "
                 f"{CLIP_PROB_TOLERANCE:.2g}; max box error {clip.max_box_px} px, tolerance "
                 f"{CLIP_BOX_TOLERANCE_PX} px)")
    return _verdict_lines(head, [crops] + ([clip] if clip else []), known)


def locator_lines(backend: str, diff: LocatorDiff, prefix: str = "arm64", known: bool = False
                  ) -> tuple[list[str], bool]:
    verdict = "match" if diff.ok else "MISMATCH"
    head = (f"{prefix} stream locator {backend}: {verdict}: {diff.matched}/{diff.eyes} eyes on {diff.frames} "
            f"frames (max centre error {diff.max_center_px:.2g} px, tolerance {LOCATOR_TOLERANCE_PX} px; max box "
            f"error {diff.max_box_px} px)")
    return _verdict_lines(head, [diff], known)


class CostLog:
    """Wall clock per part of a check, for the log: where CI time goes under emulation (never a speed)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def part(self, name: str) -> Any:
        import time

        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def line(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())
        return f"wall clock of this check's parts (where CI time goes; not a speed): {parts or 'none'}"


def cmd_stream(args: argparse.Namespace) -> int:
    """ROOT half: replay the host's inputs on every installed backend and compare with what the host got."""
    cost = CostLog()
    with cost.part("imports"):
        from eyesdk import EyeState, backends
        from eyesdk.formats import BACKENDS
        from eyesdk.locators import MediaPipeLocator

    folder = Path(args.dir)
    reference = json.loads((folder / STREAM_REFERENCE).read_text(encoding="utf-8"))
    prefix, known = args.prefix, set(args.known_failure)
    failures: list[str] = []
    if reference.get("schema") != STREAM_SCHEMA:
        return _finish([f"{folder / STREAM_REFERENCE} is not an {STREAM_SCHEMA} document"], prefix)
    bundle = _load(args.model)
    if bundle.sha256 != reference["bundle"]:
        return _finish([f"the host's reference is for bundle {reference['bundle'][:12]}, this root has "
                        f"{bundle.sha256[:12]}"], prefix)
    with np.load(folder / STREAM_ARRAYS) as arrays:
        crops = arrays["crops"]
        frames = list(arrays["frames"]) if "frames" in arrays else None
    clip_ref = reference.get("clip")
    locator_backends = _locator_backends()
    clip, clip_locator = None, None
    if not (reference.get("locator") and frames):
        print(f"{prefix} stream locator: skipped (the host wrote no locator reference)")
    elif not locator_backends:
        print(f"{prefix} stream locator: skipped (neither tflite nor openvino is installed here to run it)")
    elif clip_ref:
        clip = shifted_clip(frames[0])
        with cost.part("clip locator load"):
            clip_locator = MediaPipeLocator(models=folder / STREAM_MODELS)
    for backend in BACKENDS:
        if not backends.is_available(backend):
            print(f"{prefix} stream {backend}: not installed")
            continue
        if backend not in reference["crops"]:
            failures.append(f"stream {backend}: the host wrote no reference for it (install it in the host .venv)")
            continue
        with cost.part(f"{backend} load"):
            es = EyeState(model=bundle, backend=backend, precision=reference["precision"])
        tolerance = float(es.artifact.get("tolerance", DEFAULT_TOLERANCE))
        with cost.part(f"{backend} crops"):
            replayed = replay_crops(es, reference["timeline"], crops)
        crop_diff = compare_stream(reference["crops"][backend], replayed,
                                   Tolerance(logit=tolerance, temperature=es.temperature))
        clip_diff = None
        if clip is not None and backend in clip_ref["runs"]:
            with cost.part(f"{backend} clip"):
                replayed = replay_clip(es, clip_locator, clip)
            clip_diff = compare_stream(clip_ref["runs"][backend], replayed,
                                       Tolerance(prob=CLIP_PROB_TOLERANCE, box=CLIP_BOX_TOLERANCE_PX))
        lines, ok = stream_backend_lines(backend, crop_diff, clip_diff, tolerance, prefix,
                                         f"stream {backend}" in known)
        print("\n".join(lines))
        if not ok:
            failures.append(f"stream {backend}: the replay differs from the host's")
    for backend in locator_backends if reference.get("locator") and frames else ():
        want = reference["locator"].get(backend) or next(iter(reference["locator"].values()))
        with cost.part(f"locator {backend}"):
            located = locate_frames(MediaPipeLocator(models=folder / STREAM_MODELS, backend=backend), frames)
        lines, ok = locator_lines(backend, compare_locations(want, located), prefix,
                                  f"stream locator {backend}" in known)
        print("\n".join(lines))
        if not ok:
            failures.append(f"stream locator {backend}: eye locations differ from the host's")
    print(cost.line())
    return _finish(failures, prefix)


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
    reference = sub.add_parser("stream-reference", help="HOST: write the stream scenario's inputs and outputs")
    reference.add_argument("out", help="folder to write into (copied into the root)")
    reference.add_argument("--model", default=None)
    reference.add_argument("--seed", type=int, default=0)
    reference.add_argument("--locator-models", action="append", default=[], metavar="DIR",
                           help="folder with the landmark locator's files, tried before the user cache (repeatable)")
    reference.set_defaults(run=cmd_stream_reference)
    stream = sub.add_parser("stream", help="replay the host's stream scenario here and compare")
    stream.add_argument("dir", help="the folder stream-reference wrote")
    stream.add_argument("--model", default=None)
    stream.add_argument("--prefix", default="arm64")
    stream.add_argument("--known-failure", action="append", default=[], metavar="'stream BACKEND'",
                        help="'stream BACKEND' or 'stream locator BACKEND' known to differ here: reported, not fatal")
    stream.set_defaults(run=cmd_stream)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
