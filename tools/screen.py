"""Accuracy screening of a training recipe on one subject-disjoint split (cheap protocol before a full CV).

Trains ``TrainConfig`` with overrides on every fold but the validation and test folds, then reports the test fold
(and validation) per source, the worst subjects, the MRL glasses x reflections cells and the separability
diagnostics; writes ``OUT/report.json`` and ``OUT/logits.npz`` (test + validation logits, labels, subjects) so
intervals and pooled temperatures can be computed afterwards.

    .venv/bin/python tools/screen.py --out runs/screen/base --test-fold 0 --val-fold 1 --epochs 15 \
        [--set layers='"c16/2 c32/2 c64/2"'] [--aug glint_p=0.5] [--size 24]

``--set KEY=JSON`` overrides a TrainConfig field, ``--aug KEY=JSON`` an AugmentConfig field (lists become tuples).
Test fold 0 holds s0021 (glasses + big glints under bad infrared light), the hardest MRL subject.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = [str(ROOT.parent / "shared" / "data" / "mrlEyes_2018_01"), str(ROOT.parent / "shared" / "data" / "cew")]


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        parsed = json.loads(value)
        out[key.strip()] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out


def cell_table(report: dict, logits: np.ndarray, y: np.ndarray, samples) -> list[str]:
    """Open-eye recall and closed-eye specificity for the MRL glasses x reflections cells."""
    lines = []
    for g in ("no", "yes"):
        for r in ("none", "small", "big"):
            idx = [i for i, s in enumerate(samples) if s.source == "mrl" and s.attrs.get("glasses") == g
                   and s.attrs.get("reflections") == r]
            if not idx:
                continue
            yy, zz = y[idx], logits[idx]
            rec = float(np.mean(zz[yy == 1] >= 0)) if (yy == 1).any() else float("nan")
            spec = float(np.mean(zz[yy == 0] < 0)) if (yy == 0).any() else float("nan")
            lines.append(f"glasses={g:<3} refl={r:<5} n={len(idx):>5} open recall {rec:.3f} "
                         f"(n={int((yy == 1).sum())}) closed spec {spec:.3f} (n={int((yy == 0).sum())})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--test-fold", type=int, default=0)
    parser.add_argument("--val-fold", type=int, default=1)
    parser.add_argument("--size", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--aug", action="append", default=[])
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "eyesdk" / "crops"))
    args = parser.parse_args(argv)

    from eyesdk.converters.augment import AugmentConfig
    from eyesdk.converters.evaluate import evaluate_model, format_report
    from eyesdk.converters.pipeline import prepare_data, write_json
    from eyesdk.converters.train import TrainConfig, predict_logits, train
    from eyesdk.preprocess import PreprocessContract

    overrides = parse_overrides(args.sets)
    aug = AugmentConfig(**parse_overrides(args.aug))
    cfg = TrainConfig(**{"epochs": args.epochs, **overrides, "augment": aug})
    data = prepare_data(DATA, ROOT / "folds" / "shared-data-5fold.json", cache_dir=args.cache,
                        contract=PreprocessContract(size=args.size), progress=False)
    folds = data.folds
    train_mask = (folds != args.val_fold) & (folds != args.test_fold)
    val_mask, test_mask = folds == args.val_fold, folds == args.test_fold
    out = Path(args.out)
    t0 = time.time()
    train_samples = data.subset(train_mask)
    result = train(data.x[train_mask], data.y[train_mask], [s.source for s in train_samples],
                   data.standardized(val_mask), data.y[val_mask], cfg, out, contract=data.contract, progress=False,
                   extra_meta={"data_summary": {"val_fold": args.val_fold, "test_fold": args.test_fold}},
                   attrs=[s.attrs for s in train_samples])
    minutes = (time.time() - t0) / 60
    reports, arrays, lines = {}, {}, []
    for name, mask in (("test", test_mask), ("val", val_mask)):
        samples = data.subset(mask)
        x = data.standardized(mask)
        rep = evaluate_model(result.model, x, data.y[mask], samples, result.temperature)
        z = predict_logits(result.model, x)
        reports[name] = rep
        arrays[f"{name}_logits"], arrays[f"{name}_y"] = z, data.y[mask]
        arrays[f"{name}_subjects"] = np.array([s.subject for s in samples])
        lines.append(f"== {name} fold ==\n{format_report(rep)}")
        lines += cell_table(rep, z, data.y[mask], samples)
    np.savez_compressed(out / "logits.npz", **arrays)
    summary = {
        "config": cfg.to_dict(), "size": args.size, "minutes": minutes, "best_epoch": result.best_epoch + 1,
        "temperature": result.temperature,
        **{f"{n}_{src}_{k}": reports[n]["per_source"][src][k] for n in reports for src in ("mrl", "cew")
           for k in ("bacc", "auc", "ece")},
        "test_ece": reports["test"]["overall"]["ece"],
    }
    write_json(out / "report.json", {"summary": summary, **reports})
    print("\n".join(lines))
    print(f"SUMMARY {out.name}: test MRL {summary['test_mrl_bacc']:.4f} CEW {summary['test_cew_bacc']:.4f} "
          f"AUC {summary['test_mrl_auc']:.4f}/{summary['test_cew_auc']:.4f} ECE {summary['test_ece']:.4f} | val MRL "
          f"{summary['val_mrl_bacc']:.4f} CEW {summary['val_cew_bacc']:.4f} | T {result.temperature:.2f} "
          f"best ep {result.best_epoch + 1} | {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
