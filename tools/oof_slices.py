"""Markdown tables of a cross-validation's pooled out-of-fold predictions: per source, per MRL attribute, per subject.

Reads ``OUT/oof.npz`` of ``eyesdk-convert cv`` (every crop scored by the fold model that never saw its subject) and
prints what docs/model-card.md shows: slices with balanced accuracy, AUC and ECE at the pooled temperature, and
every MRL subject's errors and open-eye recall.

    .venv/bin/python tools/oof_slices.py runs/cv/oof.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = [str(ROOT.parent / "shared" / "data" / "mrlEyes_2018_01"), str(ROOT.parent / "shared" / "data" / "cew")]


def main(argv: list[str] | None = None) -> int:
    from eyesdk.converters.evaluate import report_logits
    from eyesdk.converters.pipeline import prepare_data
    from eyesdk.metrics import predict_open

    oof = np.load((argv or sys.argv[1:])[0])
    t = float(oof["temperature"])
    data = prepare_data(DATA, ROOT / "folds" / "shared-data-5fold.json", progress=False)
    by_path = {str(Path(s.path).resolve()): s for s in data.subset(np.ones(len(data.y), bool))}
    samples = [by_path[str(Path(str(p)).resolve())] for p in oof["paths"]]
    logits, y = oof["logits"], oof["y"]
    report = report_logits(logits, y, samples, t)
    print(f"pooled out-of-fold, T = {t:.3f}, {len(y)} crops\n")
    print("| slice | n | bacc | AUC | ECE |\n|---|---|---|---|---|")
    rows = [("overall", report["overall"])] + [(f"source {k}", v) for k, v in report["per_source"].items()]
    rows += [(f"MRL {a} = {v}", r) for a, vals in report["per_attribute"].items() for v, r in vals.items()]
    for name, r in rows:
        print(f"| {name} | {r['n']:,} | {r['bacc']:.4f} | {r['auc']:.4f} | {r['ece']:.4f} |")
    print("\n| MRL subject | fold | crops | open | errors | open recall | closed specificity |")
    print("|---|---|---|---|---|---|---|")
    subjects = np.asarray(oof["subjects"])
    pred = predict_open(logits, t)
    for s in sorted(set(subjects[np.char.startswith(subjects.astype(str), "mrl:")])):
        m = subjects == s
        o, c = m & (y == 1), m & (y == 0)
        rec = f"{pred[o].mean():.3f}" if o.any() else "-"
        spec = f"{(1 - pred[c]).mean():.3f}" if c.any() else "-"
        print(f"| {s[4:]} | {int(oof['folds'][m][0])} | {int(m.sum())} | {int(o.sum())} | "
              f"{int((pred[m] != y[m]).sum())} | {rec} | {spec} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
