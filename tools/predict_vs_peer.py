"""Whole ``EyeState.predict`` of several bundles (and their bare runtime calls) against the peer's bare session.run.

One process, interleaved rounds (``eyesdk.timing.interleaved_us``), so the ratios hold on a loaded machine. Our side
is the public call on a decoded ~90x90 uint8 crop; the peer's side is only ``session.run`` on a prepared input (the
same lopsided comparison as ``benchmarks/peer_latency.py``). Also prints the ``predict_batch`` rate on a 256-crop
uint8 stack for each bundle and backend with a dynamic batch (or a loop of batch-1 calls).

    .venv/bin/python tools/predict_vs_peer.py eyesdk/models/default runs/bundle_s2 [--backend tflite] [--calls 3000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+")
    parser.add_argument("--backend", default="tflite", help="batch-1 backend (default tflite, the auto winner here)")
    parser.add_argument("--batch-backend", default="onnxruntime")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--threads", default="1,2", help="threads for the batch rates")
    args = parser.parse_args(argv)

    import eyesdk
    from eyesdk.benchmarks.options import benchmark_crop
    from eyesdk.benchmarks.peers import load_peer
    from eyesdk.timing import interleaved_us

    crop, where = benchmark_crop(None)
    contestants = {}
    peer_path = ROOT.parent / "shared" / "peers" / "open-closed-eye-0001" / "open-closed-eye.onnx"
    if peer_path.is_file():
        peer = load_peer(f"omz-open-closed-eye:{peer_path}")
        x_peer = peer.prepare(crop.astype(np.float32))
        contestants["peer bare session.run"] = lambda: peer.session_run(x_peer)
    for b in args.bundles:
        es = eyesdk.EyeState(b, backend=args.backend, precision="fp32")
        size = es.bundle.contract.size
        x = np.zeros((1, 1, size, size), np.float32)
        contestants[f"{b} predict ({es.backend})"] = (lambda e: lambda: e.predict(crop))(es)
        contestants[f"{b} bare run"] = (lambda e, xx: lambda: e._run(xx))(es, x)
    samples = interleaved_us(contestants, calls=args.calls, rounds=20, warmup=200)
    p50 = {k: float(np.median(v)) for k, v in samples.items()}
    peer_us = p50.get("peer bare session.run")
    print(f"crop {where} {crop.shape}; p50 µs, interleaved, {args.calls} calls each")
    for k, v in p50.items():
        print(f"  {k:<62} {v:8.1f}" + (f"  {v / peer_us:5.2f}x peer" if peer_us else ""))
    stack = np.random.default_rng(0).integers(0, 256, (256, 90, 90), dtype=np.uint8)
    for t in (int(v) for v in args.threads.split(",")):
        for b in args.bundles:
            es = eyesdk.EyeState(b, backend=args.batch_backend, precision="fp32", threads=t)
            es.predict_batch(stack)
            best = min(_timed(lambda e=es: e.predict_batch(stack)) for _ in range(7))
            print(f"  {b} predict_batch 256 ({es.backend}, {t} thread(s)): {256 / best:,.0f} crops/s")
    return 0


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
