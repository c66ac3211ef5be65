"""Where one ``EyeState.predict`` call spends its time: grey conversion, resize, standardization, inference.

    python -m eyesdk.benchmarks.predict_breakdown [--model BUNDLE] [--backend tflite] [--precision fp32] [--side 90]

Each stage is timed alone with ``timeit`` (best of 7) on the same synthetic-or-real crop; the stages' sum differs from
the whole call by the Python glue (argument checks, sigmoid, result object).
"""

from __future__ import annotations

import argparse
import timeit

import eyesdk
from eyesdk.preprocess import resize_grey, standardize, to_grey

from .peer_latency import benchmark_crop


def best_us(fn, number: int = 3000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--side", type=int, default=90)
    args = parser.parse_args(argv)
    crop, where = benchmark_crop(args.side)
    es = eyesdk.EyeState(model=args.model, backend=args.backend, precision=args.precision)
    contract = es.bundle.contract
    grey = to_grey(crop)
    resized = resize_grey(grey, contract.size)
    x = standardize(resized, contract.std_floor).reshape(1, 1, contract.size, contract.size)
    stages = {
        "grey conversion": lambda: to_grey(crop),
        f"resize to {contract.size}x{contract.size}": lambda: resize_grey(grey, contract.size),
        "standardization": lambda: standardize(resized, contract.std_floor),
        f"inference ({es.backend} {es.precision})": lambda: es.logits(x),
    }
    total = best_us(lambda: es.predict(crop))
    print(f"crop: {where} {crop.shape}; whole predict p-best {total:.1f} µs")
    for name, fn in stages.items():
        t = best_us(fn)
        print(f"  {name:<32} {t:7.1f} µs  {t / total:6.1%}")


if __name__ == "__main__":
    main()
