"""Batch throughput of ``EyeState.predict_batch`` (crops/s) for batch 64 and 256, per backend x precision x threads.

The input is what a batch user has: an N x 90 x 90 uint8 stack of decoded grey crops; the time covers the whole
public call (one vectorized preprocessing call, inference, temperature, threshold, result objects).

    python -m eyesdk.benchmarks.throughput [--model BUNDLE] [--batches 64,256] [--threads 1,2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import eyesdk
from eyesdk.formats import BACKEND_FORMAT


def crops_per_second(es: eyesdk.EyeState, stack: np.ndarray, repeats: int) -> float:
    """Best of ``repeats`` timed calls (after one warm-up call), as crops per second."""
    es.predict_batch(stack)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        es.predict_batch(stack)
        best = min(best, time.perf_counter() - start)
    return len(stack) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="bundle directory (default: the embedded bundle)")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    rng = np.random.default_rng(0)
    stacks = {b: rng.integers(0, 256, size=(b, 90, 90), dtype=np.uint8) for b in batches}
    bundle = eyesdk.EyeState(model=args.model, backend="auto").bundle
    print(f"bundle {bundle.name}; crops/s of predict_batch on N x 90 x 90 uint8 (best of {args.repeats})")
    print(f"{'backend':<12} {'precision':<9} {'threads':>7}" + "".join(f"{'batch ' + str(b):>12}" for b in batches))
    for artifact in bundle.manifest["artifacts"]:
        backend = next(b for b, f in BACKEND_FORMAT.items() if f == artifact["format"])
        if backend not in eyesdk.available_backends():
            continue
        for t in threads:
            es = eyesdk.EyeState(model=bundle, backend=backend, precision=artifact["precision"], threads=t)
            rates = [crops_per_second(es, stacks[b], args.repeats) for b in batches]
            print(f"{backend:<12} {artifact['precision']:<9} {t:>7}" + "".join(f"{r:>12,.0f}" for r in rates))


if __name__ == "__main__":
    main()
