"""Assemble five ``tools/screen.py`` runs (test fold i, validation fold i+1) into one cross-validation summary.

The same numbers ``eyesdk-convert cv`` prints: per-fold test balanced accuracy per source (mean ± std), the pooled
out-of-fold temperature, leave-one-fold-out ECE, subject-bootstrap intervals and worst open-eye recall.

    .venv/bin/python tools/screen_cv.py runs/screen/s2_16_32_64 runs/screen/s2_16_32_64_t1 ... (one per fold)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from eyesdk.converters.crossval import format_oof, summarize_oof

    runs = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    parts: dict[str, list] = {k: [] for k in ("logits", "y", "subjects", "sources", "folds")}
    rows = []
    for run in runs:
        report = json.loads((run / "report.json").read_text())
        arrays = np.load(run / "logits.npz")
        fold = _test_fold(run)
        parts["logits"].append(arrays["test_logits"].astype(np.float64))
        parts["y"].append(arrays["test_y"])
        parts["subjects"].append(arrays["test_subjects"])
        parts["sources"].append(np.array([s.split(":")[0] for s in arrays["test_subjects"]]))
        parts["folds"].append(np.full(len(arrays["test_y"]), fold))
        s = report["summary"]
        rows.append((fold, s["test_mrl_bacc"], s["test_cew_bacc"], s["test_mrl_auc"], s["test_cew_auc"],
                     s["test_ece"], s["temperature"], s["best_epoch"]))
    print(f"{'fold':>4} {'MRL bacc':>9} {'CEW bacc':>9} {'MRL AUC':>8} {'CEW AUC':>8} {'ECE(val T)':>10} {'T':>5} ep")
    for r in sorted(rows):
        print(f"{r[0]:>4} {r[1]:>9.4f} {r[2]:>9.4f} {r[3]:>8.4f} {r[4]:>8.4f} {r[5]:>10.4f} {r[6]:>5.2f} {r[7]}")
    arr = np.array([r[1:6] for r in rows])
    print(f"mean {arr[:, 0].mean():>9.4f} {arr[:, 1].mean():>9.4f} {arr[:, 2].mean():>8.4f} {arr[:, 3].mean():>8.4f} "
          f"{arr[:, 4].mean():>10.4f}\n std {arr[:, 0].std():>9.4f} {arr[:, 1].std():>9.4f}")
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    print(format_oof(summarize_oof(cat["logits"], cat["y"], cat["subjects"], cat["sources"], cat["folds"])))
    return 0


def _test_fold(run: Path) -> int:
    import torch

    ckpt = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    return int(ckpt["data_summary"]["test_fold"])


if __name__ == "__main__":
    sys.exit(main())
