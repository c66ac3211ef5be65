"""Batch-1 latency of ``EyeState.predict`` against the peer model's bare ``session.run``, in one process.

The comparison is deliberately lopsided against us: our side is the whole public call on a decoded ~90x90 uint8
grey crop (validation, grey conversion, contract resize, standardisation, inference, temperature, threshold), the
peer's side is only ``onnxruntime`` running an already prepared (1, 3, 32, 32) input with 1 thread. Rounds are
interleaved (peer, ours, peer, ours, ...) so CPU frequency changes and neighbours' load hit both sides alike.

    python benchmarks/peer_latency.py [--model BUNDLE] [--all] [--rounds 30] [--calls 200]

Without ../shared (a user's machine) the peer is skipped with a message and only our numbers are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PEER = SHARED / "peers" / "open-closed-eye-0001" / "open-closed-eye.onnx"
MRL = SHARED / "data" / "mrlEyes_2018_01"


def benchmark_crop(side: int = 90) -> tuple[np.ndarray, str]:
    """A decoded uint8 grey crop near ``side`` px: a real MRL image when ../shared has one, else a synthetic eye."""
    if MRL.is_dir():
        from PIL import Image

        for path in sorted(MRL.glob("s00*/*.png"))[:4000]:
            with Image.open(path) as image:
                if abs(image.width - side) <= 4 and abs(image.height - side) <= 4:
                    return np.asarray(image.convert("L")), str(path.relative_to(SHARED))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    ellipse = ((xx - side / 2) / (side / 2.5)) ** 2 + ((yy - side / 2) / (side / 5)) ** 2
    noise = np.random.default_rng(0).normal(0, 6, (side, side))
    crop = np.clip(170 - 110 * (ellipse < 1) + noise, 0, 255).astype(np.uint8)
    return crop, f"synthetic {side}x{side}"


def peer_runner(crop: np.ndarray) -> Callable[[], object] | None:
    """The peer's bare session.run on its own prepared input, or None (with a message) when ../shared is absent."""
    if not PEER.is_file():
        print(f"peer skipped: {PEER} not found (../shared is absent on this machine)")
        return None
    import onnxruntime as ort

    from eyesdk.preprocess import resize_weights

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(PEER), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    h, w = crop.shape
    resized = resize_weights(h, 32) @ crop.astype(np.float32) @ resize_weights(w, 32).T  # bilinear, as the peer
    x = np.ascontiguousarray(np.repeat(((resized - 127.0) / 255.0)[None, None], 3, axis=1), dtype=np.float32)
    feed = {name: x}
    return lambda: session.run(None, feed)


def measure(contestants: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, list[float]]:
    """Per-call µs of each contestant, interleaved round by round after a warm-up."""
    for fn in contestants.values():
        for _ in range(200):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in contestants}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for key, fn in contestants.items():
            out = samples[key]
            for _ in range(calls):
                start = clock()
                fn()
                out.append((clock() - start) / 1000.0)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bundle directory (default: the embedded bundle)")
    parser.add_argument("--all", action="store_true", help="every installed backend x precision in the bundle")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args(argv)

    import eyesdk
    from eyesdk.bundle import load_bundle, load_default_bundle
    from eyesdk.formats import FORMATS

    bundle = load_bundle(args.model) if args.model else load_default_bundle()
    crop, source = benchmark_crop()
    print(f"crop: {source}, {crop.shape[0]}x{crop.shape[1]} uint8; bundle: {bundle.path}")

    contestants: dict[str, Callable[[], object]] = {}
    peer = peer_runner(crop)
    if peer is not None:
        contestants["peer session.run"] = peer
    auto = eyesdk.EyeState(bundle)
    contestants[f"ours auto ({auto.backend} {auto.precision})"] = lambda: auto.predict(crop)
    if args.all:
        for artifact in bundle.artifacts:
            backend = FORMATS[artifact["format"]].backend
            if backend not in eyesdk.available_backends():
                continue
            es = eyesdk.EyeState(bundle, backend=backend, precision=artifact["precision"])
            contestants[f"ours {backend} {artifact['precision']}"] = (lambda e: lambda: e.predict(crop))(es)

    samples = measure(contestants, args.rounds, args.calls)
    peer_p50 = statistics.median(samples["peer session.run"]) if peer is not None else None
    print(f"{'contestant':<34} {'p50 µs':>8} {'p90 µs':>8} {'vs peer':>8}")
    for key, values in samples.items():
        p50 = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        ratio = f"{p50 / peer_p50:.2f}x" if peer_p50 else "-"
        print(f"{key:<34} {p50:>8.1f} {p90:>8.1f} {ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
