"""The temperature of a recipe from held-out logits of several screening runs, pooled (a repository tool).

    python tools/pooled_temperature.py runs/screen/kdA/logits.npz runs/screen/kdB/logits.npz

Each ``logits.npz`` is what ``tools/screen.py`` writes (``test_logits``, ``test_y``: the raw logits of a test fold the
run never trained or validated on). The fit is ``eyesdk-convert cv``'s own pooled out-of-fold fit
(``converters.crossval.pooled_temperature``); this tool exists for recipes screened on some splits only (the
distilled default: T = 1.249 from the two distillation screening runs).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from eyesdk.converters.crossval import pooled_temperature as fit_pooled


def pooled_temperature(paths: list[str]) -> tuple[float, int]:
    logits, labels = [], []
    for path in paths:
        with np.load(path) as data:
            logits.append(data["test_logits"])
            labels.append(data["test_y"])
    z, y = np.concatenate(logits), np.concatenate(labels)
    return fit_pooled(z, y), len(z)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logits", nargs="+", help="logits.npz files of tools/screen.py runs")
    args = parser.parse_args(argv)
    temperature, count = pooled_temperature(args.logits)
    print(f"pooled T {temperature:.4f} from {count} held-out crops of {len(args.logits)} run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
