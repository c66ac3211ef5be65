"""`eyesdk-convert`: train, evaluate, cross-validate, export and build model bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from .pipeline import DEFAULT_FOLDS, SHIPPED_SIZE

DEFAULT_CACHE = Path.home() / ".cache" / "eyesdk" / "crops"


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from exc


def train_options(fn):
    """Options shared by `train` and `cv`: data, split and training hyper-parameters."""
    options = [
        click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True),
                     help="Dataset root or CSV manifest (MRL, CEW, open/closed folders, path,label CSV); repeatable."),
        click.option("--folds", "folds_file", type=click.Path(), default=DEFAULT_FOLDS, show_default=True,
                     help="Subject-disjoint fold file; created on first use, reused afterwards."),
        click.option("--k", default=5, show_default=True, help="Number of folds when the fold file is created."),
        click.option("--seed", default=0, show_default=True),
        click.option("--head", type=click.Choice(["bce", "arcface"]), default="bce", show_default=True),
        click.option("--margin", "arc_margin", default=0.2, show_default=True, help="ArcFace angular margin (rad)."),
        click.option("--scale", "arc_scale", default=16.0, show_default=True, help="ArcFace scale s."),
        click.option("--widths", default="6,12,24,48", show_default=True, help="Conv widths (first at stride 1)."),
        click.option("--size", default=SHIPPED_SIZE, show_default=True, help="Model input side (contract size)."),
        click.option("--extra", default="", help="Extra stride-1 conv widths after the last stage (teachers)."),
        click.option("--epochs", default=25, show_default=True),
        click.option("--samples-per-epoch", default=40_000, show_default=True),
        click.option("--lr", default=3e-3, show_default=True),
        click.option("--threads", default=1, show_default=True),
        click.option("--teacher", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Checkpoint of a larger model to distil from (BCE head only)."),
        click.option("--distill-alpha", default=0.5, show_default=True, help="Weight of the hard-label loss."),
        click.option("--cache", type=click.Path(), default=str(DEFAULT_CACHE), show_default=True,
                     help="Cache of decoded crops (an .npz per dataset state)."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _config(**kw: Any):
    from .train import TrainConfig

    return TrainConfig(head=kw["head"], widths=_ints(kw["widths"]), extra=_ints(kw["extra"]), epochs=kw["epochs"],
                       samples_per_epoch=kw["samples_per_epoch"], lr=kw["lr"], seed=kw["seed"],
                       threads=kw["threads"], arc_margin=kw["arc_margin"], arc_scale=kw["arc_scale"],
                       teacher=kw["teacher"], distill_alpha=kw["distill_alpha"])


def _prepare(kw: dict[str, Any]):
    from eyesdk.preprocess import PreprocessContract

    from .pipeline import prepare_data

    return prepare_data(kw["data"], kw["folds_file"], kw["k"], kw["seed"], kw["cache"],
                        PreprocessContract(size=kw["size"]), progress=not kw["quiet"])


def _fold_masks(folds: np.ndarray, val_fold: int, test_fold: int | None) -> tuple[np.ndarray, ...]:
    k = int(folds.max()) + 1
    if not 0 <= val_fold < k or (test_fold is not None and not 0 <= test_fold < k) or val_fold == test_fold:
        raise click.BadParameter(f"folds must be distinct and in 0..{k - 1} (val {val_fold}, test {test_fold})")
    val = folds == val_fold
    test = folds == test_fold if test_fold is not None else np.zeros_like(val)
    return ~(val | test), val, test


def _train_one(data, out: Path, cfg, val_fold: int, test_fold: int | None, quiet: bool,
               resume: bool = True) -> dict[str, Any]:
    from .evaluate import evaluate_model, format_report
    from .pipeline import write_json
    from .train import train

    train_mask, val_mask, test_mask = _fold_masks(data.folds, val_fold, test_fold)
    train_samples = data.subset(train_mask)
    meta = {"data_summary": {**data.summary, "train": int(train_mask.sum()), "val": int(val_mask.sum()),
                             "test": int(test_mask.sum()), "val_fold": val_fold, "test_fold": test_fold}}
    result = train(data.x[train_mask], data.y[train_mask], [s.source for s in train_samples],
                   data.standardized(val_mask), data.y[val_mask], cfg, out, contract=data.contract, resume=resume,
                   progress=not quiet, extra_meta=meta)
    reports = {"best_epoch": result.best_epoch + 1, "temperature": result.temperature, "history": result.history}
    for name, mask in (("val", val_mask), ("test", test_mask)):
        if mask.any():
            reports[name] = evaluate_model(result.model, data.standardized(mask), data.y[mask], data.subset(mask),
                                           result.temperature)
            click.echo(f"\n== {name} (fold {val_fold if name == 'val' else test_fold}) ==")
            click.echo(format_report(reports[name]))
    write_json(out / "report.json", reports)
    return reports


@click.group()
def main() -> None:
    """Train, evaluate, export and bundle eye-state models."""


@main.command("train")
@train_options
@click.option("--out", type=click.Path(), default="runs/train", show_default=True)
@click.option("--val-fold", default=0, show_default=True)
@click.option("--test-fold", type=int, default=None, help="Hold this fold out entirely and report on it.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT/last.pt if present.")
def train_cmd(out: str, val_fold: int, test_fold: int | None, resume: bool, **kw: Any) -> None:
    """Train one model: early stopping and temperature on the validation fold; checkpoints in OUT."""

    data = _prepare(kw)
    _train_one(data, Path(out), _config(**kw), val_fold, test_fold, kw["quiet"], resume)
    click.echo(f"checkpoint: {Path(out) / 'best.pt'}")


@main.command("cv")
@train_options
@click.option("--out", type=click.Path(), default="runs/cv", show_default=True)
def cv_cmd(out: str, **kw: Any) -> None:
    """Subject-disjoint k-fold: fold i is the test set, fold i+1 the validation set; mean ± std over folds."""
    from .pipeline import write_json

    data = _prepare(kw)
    k = int(data.folds.max()) + 1
    per_fold = []
    for i in range(k):
        click.echo(f"\n##### fold {i + 1}/{k} (test {i}, val {(i + 1) % k})")
        rep = _train_one(data, Path(out) / f"fold{i}", _config(**kw), (i + 1) % k, i, kw["quiet"])
        per_fold.append(rep["test"])
    summary = summarize_folds(per_fold)
    from .crossval import collect_oof, format_oof, summarize_oof, write_oof

    oof = collect_oof(data, out, range(k))
    oof_summary = summarize_oof(oof["logits"], oof["y"], oof["subjects"], oof["sources"], oof["folds"])
    write_oof(Path(out) / "oof.npz", oof, oof_summary["pooled_temperature"])
    write_json(Path(out) / "cv.json", {"folds": per_fold, "summary": summary, "oof": oof_summary})
    click.echo("\n" + format_cv(summary) + "\n" + format_oof(oof_summary))


def summarize_folds(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over folds of the overall and per-source metrics."""
    keys = ("acc", "bacc", "f1", "auc", "ece", "ks")
    slices: dict[str, list[dict[str, Any]]] = {"overall": [r["overall"] for r in reports]}
    for r in reports:
        for src, m in r["per_source"].items():
            slices.setdefault(src, []).append(m)
    return {
        name: {k: {"mean": float(np.nanmean([m[k] for m in ms])), "std": float(np.nanstd([m[k] for m in ms]))}
               for k in keys}
        for name, ms in slices.items()
    }


def format_cv(summary: dict[str, Any]) -> str:
    keys = ("acc", "bacc", "f1", "auc", "ece", "ks")
    lines = [f"{'slice':<10}" + "".join(f"{k:>18}" for k in keys)]
    for name, m in summary.items():
        lines.append(f"{name:<10}" + "".join(f"{m[k]['mean']:>11.4f} ±{m[k]['std']:.4f}" for k in keys))
    return "\n".join(lines)


@main.command("evaluate")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True))
@click.option("--folds", "folds_file", type=click.Path(), default="folds/shared-data-5fold.json", show_default=True)
@click.option("--fold", "fold_ids", multiple=True, type=int,
              help="Evaluate only these folds (default: the checkpoint's validation and test folds, else all data).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the full report as JSON here.")
@click.option("--cache", type=click.Path(), default=str(DEFAULT_CACHE), show_default=True)
@click.option("--quiet", is_flag=True)
def evaluate_cmd(checkpoint: str, data: tuple[str, ...], folds_file: str, fold_ids: tuple[int, ...],
                 json_out: str | None, cache: str, quiet: bool) -> None:
    """Accuracy, balanced accuracy, F1, ROC-AUC, ECE overall / per source / per MRL attribute + diagnostics."""
    from .checkpoint import load_model
    from .evaluate import evaluate_model, format_report
    from .pipeline import prepare_data, write_json

    model, ckpt = load_model(checkpoint)
    prepared = prepare_data(data, folds_file, progress=not quiet, cache_dir=cache)
    summary = ckpt.get("data_summary", {})
    if not fold_ids:
        fold_ids = tuple(f for f in (summary.get("val_fold"), summary.get("test_fold")) if f is not None)
    mask = np.isin(prepared.folds, fold_ids) if fold_ids else np.ones(len(prepared.y), bool)
    report = evaluate_model(model, prepared.standardized(mask), prepared.y[mask], prepared.subset(mask),
                            float(ckpt.get("temperature", 1.0)))
    report["folds"] = list(fold_ids)
    click.echo(format_report(report))
    if json_out:
        write_json(json_out, report)
        click.echo(f"report: {json_out}")


def train_for_build(data, val_fold: int, workdir: Path) -> Path:
    """`build` without --checkpoint trains the shipped recipe: TrainConfig's defaults on every fold but val_fold."""
    from .train import TrainConfig

    _train_one(data, Path(workdir), TrainConfig(), val_fold, None, quiet=False)
    return Path(workdir) / "best.pt"


def _register_export_commands() -> None:
    from .cli_export import export_cmd, make_build_command

    main.add_command(export_cmd, "export")
    main.add_command(make_build_command(train_for_build), "build")


_register_export_commands()

if __name__ == "__main__":  # pragma: no cover
    main()

