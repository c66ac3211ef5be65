"""`eyesdk-convert`: train, evaluate, cross-validate, pack, export and build model bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from eyesdk.errors import EyeSDKError

from .distributed import DEVICES
from .pack import DEFAULT_SHARD_SIZE
from .pipeline import DEFAULT_CACHE, DEFAULT_FOLDS, SHIPPED_SIZE

#: Import names of what the ``train`` extra installs: a command that misses one says which extra to install.
TRAIN_EXTRA_MODULES = ("torch", "torchao", "onnx", "onnxscript", "onnxruntime", "openvino", "nncf", "litert_torch",
                       "ai_edge_litert")


class ConvertGroup(click.Group):
    """The command group: a named eyesdk error, or a missing module of the ``train`` extra, ends a command with one
    line saying what is wrong (and which extra to install), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in TRAIN_EXTRA_MODULES:
                raise
            command = f"eyesdk-convert {ctx.invoked_subcommand}" if ctx.invoked_subcommand else "eyesdk-convert"
            raise click.ClickException(f"{command} needs {missing}, which the training extra installs: "
                                       "pip install 'eyesdk[train]'") from None
        except EyeSDKError as exc:  # raised on purpose with a message that says what is wrong: one line, no trace
            raise click.ClickException(str(exc)) from None


class ConfigDefault(click.Option):
    """An option whose default is the `TrainConfig` field of the same meaning: one definition of the recipe.

    TrainConfig lives beside the training loop (which imports torch), so the default is read only when a command
    runs or its help is shown; without torch the help shows no default and running says what to install.
    """

    def __init__(self, *args: Any, field: str, **kwargs: Any) -> None:
        super().__init__(*args, show_default=True, **kwargs)
        self.config_field = field

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        try:
            from .train import TrainConfig
        except ModuleNotFoundError:
            if call:
                raise
            return None
        value = getattr(TrainConfig(), self.config_field)
        return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value


def _config_option(*decls: str, field: str, type: Any, help: str | None = None, callback: Any = None) -> Any:
    return click.option(*decls, cls=ConfigDefault, field=field, type=type, help=help, callback=callback)


def _layer_widths(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    """Conv widths in layer order, e.g. ``6,12,24,48``; empty means none (``--extra``).

    Not ``eyesdk.cliutil.comma_ints``: that one reads a set (duplicates dropped), and layers may repeat (64,64).
    """
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        widths = tuple(int(v) for v in items)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of conv widths, e.g. 6,12,24,48") from None
    if any(w < 1 for w in widths):
        raise click.BadParameter(f"{value!r}: conv widths must be integers >= 1")
    return widths


def _layer_spec(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A layer spec checked by the model's own parser; empty means the classic --widths / --extra."""
    if not value:
        return None
    from .model import format_layers, parse_layers

    try:
        return format_layers(parse_layers(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def train_options(fn):
    """Options shared by `train` and `cv`: data, split and training hyper-parameters (defaults: TrainConfig)."""
    options = [
        click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True),
                     help="Dataset root, CSV manifest or pack (MRL, CEW, open/closed folders, path,label CSV, "
                          "`eyesdk-convert pack` output); repeatable."),
        click.option("--folds", "folds_file", type=click.Path(), default=DEFAULT_FOLDS, show_default=True,
                     help="Subject-disjoint fold file; created on first use, reused afterwards."),
        click.option("--k", default=5, show_default=True, help="Number of folds when the fold file is created."),
        _config_option("--seed", field="seed", type=int, help="Training seed (and the seed of a new fold file)."),
        _config_option("--head", field="head", type=click.Choice(["bce", "arcface"])),
        _config_option("--margin", "arc_margin", field="arc_margin", type=float, help="ArcFace angular margin (rad)."),
        _config_option("--scale", "arc_scale", field="arc_scale", type=float, help="ArcFace scale s."),
        _config_option("--widths", field="widths", type=str, callback=_layer_widths,
                       help="Classic EyeNet conv widths (first at stride 1); when given they replace --layers."),
        click.option("--size", default=SHIPPED_SIZE, show_default=True, help="Model input side (contract size)."),
        _config_option("--extra", field="extra", type=str, callback=_layer_widths,
                       help="Extra stride-1 conv widths after the last stage (teachers)."),
        _config_option("--layers", field="layers", type=str, callback=_layer_spec,
                       help="The network as a layer spec, e.g. 'c16/2 c32/2 c64/2' (converters/model.py)."),
        _config_option("--epochs", field="epochs", type=int),
        _config_option("--samples-per-epoch", field="samples_per_epoch", type=int),
        _config_option("--batch-size", field="batch_size", type=int,
                       help="Global batch: split across the processes of a torchrun job."),
        _config_option("--lr", field="lr", type=float),
        _config_option("--weight-decay", field="weight_decay", type=float),
        _config_option("--warmup-epochs", field="warmup_epochs", type=float),
        _config_option("--dropout", field="dropout", type=float),
        _config_option("--ema-decay", field="ema_decay", type=float, help="Decay of the weights' moving average."),
        _config_option("--patience", field="patience", type=int, help="Epochs without gain before stopping."),
        _config_option("--threads", field="threads", type=int, help="torch CPU threads per process."),
        click.option("--teacher", type=click.Path(exists=True, dir_okay=False), multiple=True,
                     help="Checkpoint to distil from (BCE head only); repeat it for a mean-logit teacher ensemble."),
        _config_option("--distill-alpha", field="distill_alpha", type=float, help="Weight of the hard-label loss."),
        click.option("--cache", type=click.Path(), default=str(DEFAULT_CACHE), show_default=True,
                     help="Cache of decoded crops (an .npz per dataset state)."),
        click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                     help="auto: CUDA when present (cuda:LOCAL_RANK under torchrun), else the CPU."),
        click.option("--amp/--no-amp", default=True, show_default=True,
                     help="Mixed precision for the training steps on CUDA (bfloat16, else float16 + loss scaling)."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


#: Options of `train_options` that are TrainConfig fields (same name): passed to it as given.
_CONFIG_KEYS = ("head", "widths", "extra", "epochs", "samples_per_epoch", "batch_size", "lr", "weight_decay",
                "warmup_epochs", "dropout", "ema_decay", "patience", "seed", "threads", "arc_margin", "arc_scale",
                "teacher", "distill_alpha", "layers")


def _config(**kw: Any):
    from .train import TrainConfig

    given = {key: kw[key] for key in _CONFIG_KEYS}
    given["teacher"] = list(given["teacher"]) or None  # repeated --teacher: an ensemble
    return TrainConfig(**given)


def _prepare(kw: dict[str, Any], show: bool = True):
    from eyesdk.preprocess import PreprocessContract

    from .pipeline import prepare_data

    data = prepare_data(kw["data"], kw["folds_file"], kw["k"], kw["seed"], kw["cache"],
                        PreprocessContract(size=kw["size"]), progress=show and not kw["quiet"])
    data.summary["folds_file"] = str(kw["folds_file"])  # checkpoints and manifests say which split the folds are
    return data


def _job(kw: dict[str, Any]):
    """This process's part of the training job: alone, or one rank of a torchrun job (converters/distributed.py)."""
    from .distributed import Distributed

    return Distributed.start(device=kw["device"], amp=kw["amp"])


def _fold_masks(folds: np.ndarray, val_fold: int, test_fold: int | None) -> tuple[np.ndarray, ...]:
    k = int(folds.max()) + 1
    if not 0 <= val_fold < k or (test_fold is not None and not 0 <= test_fold < k) or val_fold == test_fold:
        raise click.BadParameter(f"folds must be distinct and in 0..{k - 1} (val {val_fold}, test {test_fold})")
    val = folds == val_fold
    test = folds == test_fold if test_fold is not None else np.zeros_like(val)
    return ~(val | test), val, test


def _mrl_subjects(data, mask: np.ndarray) -> list[str]:
    """The MRL subjects among the masked crops: what a benchmark needs to pick subjects a model never saw."""
    return sorted({s.subject for s in data.subset(mask) if s.source == "mrl"})


def _train_one(data, out: Path, cfg, val_fold: int, test_fold: int | None, quiet: bool,
               resume: bool = True, dist=None) -> dict[str, Any]:
    """Train on every fold but val_fold (and test_fold), then report on both; under torchrun every rank trains and
    rank 0 alone evaluates, prints and writes report.json (the others return an empty report)."""
    from .distributed import SINGLE
    from .evaluate import evaluate_model, format_report
    from .pipeline import write_json
    from .train import train

    dist = dist or SINGLE

    train_mask, val_mask, test_mask = _fold_masks(data.folds, val_fold, test_fold)
    meta = {"data_summary": {**data.summary, "train": int(train_mask.sum()), "val": int(val_mask.sum()),
                             "test": int(test_mask.sum()), "val_fold": val_fold, "test_fold": test_fold,
                             "train_folds": sorted({int(f) for f in data.folds[train_mask]}),
                             "mrl_subjects": {role: _mrl_subjects(data, mask) for role, mask in
                                              (("train", train_mask), ("val", val_mask), ("test", test_mask))}}}
    attrs = [s.attrs for s in data.subset(train_mask)] if cfg.cell_weights else None  # only cells read them
    result = train(data.x[train_mask], data.y[train_mask], data.sources(train_mask),
                   data.standardized(val_mask), data.y[val_mask], cfg, out, contract=data.contract, resume=resume,
                   progress=not quiet, extra_meta=meta, dist=dist, attrs=attrs)
    if not dist.is_main:
        return {}
    reports = {"best_epoch": result.best_epoch + 1, "temperature": result.temperature, "history": result.history}
    for name, mask in (("val", val_mask), ("test", test_mask)):
        if mask.any():
            reports[name] = evaluate_model(result.model, data.standardized(mask), data.y[mask], data.subset(mask),
                                           result.temperature)
            click.echo(f"\n== {name} (fold {val_fold if name == 'val' else test_fold}) ==")
            click.echo(format_report(reports[name]))
    write_json(out / "report.json", reports)
    return reports


@click.group(cls=ConvertGroup)
def main() -> None:
    """Train, evaluate, export and bundle eye-state models."""


@main.command("train")
@train_options
@click.option("--out", type=click.Path(), default="runs/train", show_default=True)
@click.option("--val-fold", default=0, show_default=True)
@click.option("--test-fold", type=int, default=None, help="Hold this fold out entirely and report on it.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Continue from OUT/last.pt if present.")
def train_cmd(out: str, val_fold: int, test_fold: int | None, resume: bool, **kw: Any) -> None:
    """Train one model: early stopping and temperature on the validation fold; checkpoints in OUT.

    Runs unchanged under torchrun (docs/training-at-scale.md): rank 0 prepares the data first, every rank trains its
    share, rank 0 writes checkpoints and reports.
    """
    with _job(kw) as dist:
        with dist.main_first():
            data = _prepare(kw, dist.is_main)
        _train_one(data, Path(out), _config(**kw), val_fold, test_fold, kw["quiet"], resume, dist)
        if dist.is_main:
            click.echo(f"checkpoint: {Path(out) / 'best.pt'}")


@main.command("cv")
@train_options
@click.option("--out", type=click.Path(), default="runs/cv", show_default=True)
@click.option("--val-offset", default=1, show_default=True, type=click.IntRange(min=1),
              help="Fold i is tested and fold i + OFFSET (mod k) validates; a second teacher CV uses 2.")
@click.option("--fold-teacher", "fold_teachers", multiple=True, metavar="TEMPLATE",
              help="Per-fold teacher checkpoint, {test} = the fold being tested, e.g. runs/teach/fold{test}/best.pt "
                   "(a teacher CV's model for the same test fold, so it never saw it); repeat for an ensemble.")
def cv_cmd(out: str, val_offset: int, fold_teachers: tuple[str, ...], **kw: Any) -> None:
    """Subject-disjoint k-fold: fold i is the test set, fold i+1 the validation set; mean ± std over folds.

    Runs unchanged under torchrun, like `train` (every fold is trained by all ranks; rank 0 reports).
    """
    from .crossval import collect_oof, format_oof, summarize_oof, write_oof
    from .pipeline import write_json

    with _job(kw) as dist:
        with dist.main_first():
            data = _prepare(kw, dist.is_main)
        k = int(data.folds.max()) + 1
        if val_offset % k == 0:
            raise click.BadParameter(f"--val-offset {val_offset} makes the validation fold the test fold (k = {k})")
        configs = [_fold_config(_config(**kw), fold_teachers, i) for i in range(k)]  # every fold's teachers, up front
        per_fold = []
        for i in range(k):
            val = (i + val_offset) % k
            if dist.is_main:
                click.echo(f"\n##### fold {i + 1}/{k} (test {i}, val {val})")
            cfg = configs[i]
            rep = _train_one(data, Path(out) / f"fold{i}", cfg, val, i, kw["quiet"], dist=dist)
            per_fold.append(rep.get("test"))
        if dist.is_main:
            summary = summarize_folds(per_fold)
            oof = collect_oof(data, out, range(k))
            oof_summary = summarize_oof(oof["logits"], oof["y"], oof["subjects"], oof["sources"], oof["folds"])
            write_oof(Path(out) / "oof.npz", oof, oof_summary["pooled_temperature"])
            write_json(Path(out) / "cv.json", {"folds": per_fold, "summary": summary, "oof": oof_summary})
            click.echo("\n" + format_cv(summary) + "\n" + format_oof(oof_summary))


def _fold_config(cfg: Any, templates: tuple[str, ...], test_fold: int) -> Any:
    """The config of one fold: its own teachers when --fold-teacher templates are given."""
    if not templates:
        return cfg
    import dataclasses

    paths = [t.replace("{test}", str(test_fold)) for t in templates]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise click.BadParameter(f"fold {test_fold}: teacher checkpoint(s) not found: {', '.join(missing)}")
    return dataclasses.replace(cfg, teacher=paths)


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
@click.option("--folds", "folds_file", type=click.Path(), default=DEFAULT_FOLDS, show_default=True)
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


@main.command("pack")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True),
              help="Dataset root or CSV manifest (MRL, CEW, open/closed folders, path,label CSV); repeatable.")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Pack directory; an existing pack there is replaced only once the new one is complete.")
@click.option("--size", default=SHIPPED_SIZE, show_default=True, help="Crop side (the preprocessing contract's size).")
@click.option("--shard-size", default=DEFAULT_SHARD_SIZE, show_default=True, type=click.IntRange(min=1),
              help="Crops per shard file.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Decoding threads.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def pack_cmd(data: tuple[str, ...], out: str, size: int, shard_size: int, workers: int, quiet: bool) -> None:
    """Decode image sources once into a pack: memory-mapped uint8 crops that train, cv and eyesdk-bench read."""
    from eyesdk.preprocess import PreprocessContract

    from .datasets import read_sources
    from .pack import is_pack, write_pack

    packed = [spec for spec in data if is_pack(spec)]
    if packed:
        raise click.BadParameter(f"{packed[0]} is already a pack; give the image sources it was made from",
                                 param_hint="--data")
    summary = write_pack(read_sources(data), out, PreprocessContract(size=size), shard_size, workers,
                         progress=not quiet, inputs=data)
    click.echo(f"pack {summary.path}: {summary.count} crops of {size} x {size} in {summary.shards} shard(s)")
    if summary.skipped:
        path, reason = summary.examples[0]
        click.echo(f"skipped {summary.skipped} unreadable images (listed in {Path(out) / 'skipped.jsonl'}), "
                   f"e.g. {path}: {reason}")


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

