"""`eyesdk-convert export` and `eyesdk-convert build`: checkpoint (or training) -> validated, gated model bundle.

Both read the labelled data through the shared readers and the subject-disjoint folds file that training used
(created on first use: a seeded 20 % subject-disjoint validation slice per fold), validate every artifact on the
validation fold and calibrate int8 on crops from the training folds.

``build`` is made by :func:`make_build_command`: its ``train_fn`` hook (``TrainFn``, given by ``cli.py``) trains
when no ``--checkpoint`` is given; with one, ``build`` behaves like ``export``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np

from eyesdk.cliutil import comma_choices
from eyesdk.formats import FORMATS, PRECISIONS

from .pipeline import DEFAULT_CACHE, DEFAULT_FOLDS, SHIPPED_SIZE

if TYPE_CHECKING:
    from eyesdk.preprocess import PreprocessContract

    from .pipeline import PreparedData

DEFAULT_CALIBRATION = 300

#: Training hook of ``build``: (prepared data, validation fold, work directory) -> checkpoint path.
TrainFn = Callable[["PreparedData", int, Path], Path]


def _gates(_ctx: Any, _param: Any, values: tuple[str, ...]) -> Any:
    from .validate import Gates

    drift: dict[str, float] = {}
    for value in values:
        precision, sep, number = value.partition("=")
        try:
            if not sep or precision not in PRECISIONS:
                raise ValueError
            drift[precision] = float(number)
        except ValueError:
            raise click.BadParameter(
                f"expected PRECISION=PP with PRECISION one of {', '.join(PRECISIONS)}, e.g. int8=0.5; got {value!r}"
            ) from None
    try:
        return Gates(drift_pp=drift)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _temperature(_ctx: Any, _param: Any, value: str | None) -> float | None:
    """``--temperature``: a positive number, or a cv.json holding the pooled out-of-fold temperature."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        from .crossval import read_pooled_temperature

        try:
            return read_pooled_temperature(value)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"{value!r} is neither a number nor a readable cv.json ({exc})") from None
    if not number > 0:
        raise click.BadParameter(f"temperature must be > 0, got {value}")
    return number


def export_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `export` and `build`: data, split, output, formats and gates."""
    options = [
        click.option("--data", "data", multiple=True, required=True, type=click.Path(exists=True),
                     help="Dataset root or CSV manifest, as for `train`; repeatable."),
        click.option("--folds", "folds_file", type=click.Path(), default=DEFAULT_FOLDS, show_default=True,
                     help="Subject-disjoint fold file used in training (created on first use)."),
        click.option("--k", default=5, show_default=True, help="Number of folds when the fold file is created."),
        click.option("--seed", default=0, show_default=True, help="Seed of a newly created fold file."),
        click.option("--val-fold", type=int, default=None,
                     help="Validation fold (default: the checkpoint's, else 0)."),
        click.option("--out", type=click.Path(file_okay=False), default="runs/bundle", show_default=True,
                     help="Bundle directory; an existing bundle there is replaced only once the new one is complete."),
        click.option("--name", default=None, help="Bundle name in the manifest (default: the directory name)."),
        click.option("--formats", default="all", show_default=True,
                     callback=comma_choices(list(FORMATS), "format", all_word="all"),
                     help=f"Comma-separated subset of {', '.join(FORMATS)}."),
        click.option("--precisions", default="all", show_default=True,
                     callback=comma_choices(PRECISIONS, "precision", all_word="all"),
                     help=f"Comma-separated subset of {', '.join(PRECISIONS)}."),
        click.option("--gate", "gates", multiple=True, callback=_gates, metavar="PRECISION=PP",
                     help="Override a drift gate, max |Δaccuracy| in percentage points (e.g. int8=1.0); repeatable."),
        click.option("--calibration", "calib_count", default=DEFAULT_CALIBRATION, show_default=True,
                     help="Training-fold crops used to calibrate int8."),
        click.option("--probe-count", default=32, show_default=True, type=click.IntRange(min=1),
                     help="Synthetic probe inputs shipped for device parity checks (4 KiB each at 32 px)."),
        click.option("--cache", type=click.Path(), default=str(DEFAULT_CACHE), show_default=True,
                     help="Cache of decoded crops."),
        click.option("--temperature", "temperature", default=None, metavar="T|CV_JSON", callback=_temperature,
                     help="Ship this calibration: a number, or the cv.json of `eyesdk-convert cv` (its pooled "
                          "out-of-fold temperature). Default: fitted on the validation fold."),
        click.option("--standardize-in-model/--standardize-in-runtime", "standardize_in_model", default=True,
                     show_default=True,
                     help="Put the per-crop standardization inside every exported graph (the runtime then feeds "
                          "resized crops and skips its numpy call), or leave it to the runtime (older bundles)."),
        click.option("--quiet", is_flag=True, help="No progress bars while decoding."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def split_for_export(
    data: PreparedData, val_fold: int, test_fold: int | None, calib_count: int,
    contract: PreprocessContract | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x_val, y_val, x_calib): the validation fold, and evenly spaced crops from the training folds, as the
    artifacts of ``contract`` (default: the data's) take them."""
    folds = np.asarray(data.folds)
    present = sorted(set(folds.tolist()))
    if val_fold not in present:
        raise click.BadParameter(f"--val-fold {val_fold} is not one of the folds {present}")
    val = folds == val_fold
    train = ~val & (folds != test_fold) if test_fold is not None else ~val
    if not val.any() or not train.any():
        raise click.UsageError(
            f"fold {val_fold} leaves {int(val.sum())} validation and {int(train.sum())} training crops; need both"
        )
    picked = np.flatnonzero(train)
    picked = picked[np.linspace(0, len(picked) - 1, min(calib_count, len(picked))).round().astype(np.int64)]
    calib = np.zeros_like(train)
    calib[picked] = True
    contract = contract or data.contract
    return data.fed(val, contract), data.y[val], data.fed(calib, contract)


def run_export(checkpoint: str | Path, prepared: PreparedData | None = None, **kw: Any) -> Path:
    """Load the checkpoint, prepare the data (unless ``prepared`` is given), split it and build the bundle.

    ``kw`` are the options of :func:`export_options`; returns the bundle directory.
    """
    from .bundle import NoArtifactPassedError, build_bundle, checkpoint_contract, export_contract
    from .checkpoint import load_model
    from .pipeline import prepare_data

    model, ckpt = load_model(checkpoint)
    contract = checkpoint_contract(ckpt)
    data = prepared
    if data is None:
        data = prepare_data(kw["data"], kw["folds_file"], kw["k"], kw["seed"], kw["cache"], contract,
                            progress=not kw["quiet"])
    if data.contract != contract:
        raise click.UsageError(f"the data was prepared with contract {data.contract.to_dict()} but the checkpoint "
                               f"was trained with {contract.to_dict()}")
    summary = ckpt.get("data_summary") or {}
    # the manifest says which split its fold numbers refer to (benchmarks pick the subjects it never saw by them)
    ckpt["data_summary"] = {**summary, "folds_file": summary.get("folds_file", str(kw["folds_file"]))}
    val_fold = kw["val_fold"] if kw["val_fold"] is not None else int(summary.get("val_fold", 0))
    test_fold = summary.get("test_fold")
    in_model = kw["standardize_in_model"]  # the CLIs' option (default: in the graph)
    x_val, y_val, x_calib = split_for_export(data, val_fold, test_fold, kw["calib_count"],
                                             export_contract(ckpt, in_model))
    click.echo(f"checkpoint {checkpoint}: validating on fold {val_fold} ({len(y_val)} crops), "
               f"calibrating on {len(x_calib)} training crops")
    try:
        return build_bundle((model, ckpt), x_val, y_val, x_calib, kw["out"], formats=kw["formats"],
                            precisions=kw["precisions"], gates=kw["gates"], name=kw["name"],
                            probe_count=kw["probe_count"], echo=click.echo, temperature=kw["temperature"],
                            standardize_in_model=in_model)
    except NoArtifactPassedError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("export")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Trained checkpoint (best.pt).")
@export_options
def export_cmd(checkpoint: str, **kw: Any) -> None:
    """Export a checkpoint to every format x precision, validate and gate each, and write one bundle."""
    path = run_export(checkpoint, **kw)
    click.echo(f"bundle: {path}")


def make_build_command(train_fn: TrainFn) -> click.Command:
    """The `build` command; ``train_fn`` (see :data:`TrainFn`) trains when no ``--checkpoint`` is given."""

    @click.command("build")
    @click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="Use this checkpoint instead of training one.")
    @click.option("--workdir", type=click.Path(file_okay=False), default="runs/build", show_default=True,
                  help="Where training writes its checkpoints.")
    @click.option("--size", default=SHIPPED_SIZE, show_default=True,
                  help="Model input side when training (the preprocessing contract's size).")
    @export_options
    def build_cmd(checkpoint: str | None, workdir: str, size: int, **kw: Any) -> None:
        """Train (or take --checkpoint), then export, validate and gate every artifact into one bundle."""
        from . import checkpoint as _needs_torch  # noqa: F401  (fail before the data is decoded, not after)

        prepared = None
        if checkpoint is None:
            from eyesdk.preprocess import PreprocessContract

            from .pipeline import prepare_data

            prepared = prepare_data(kw["data"], kw["folds_file"], kw["k"], kw["seed"], kw["cache"],
                                    PreprocessContract(size=size), progress=not kw["quiet"])
            val_fold = kw["val_fold"] if kw["val_fold"] is not None else 0
            checkpoint = str(train_fn(prepared, val_fold, Path(workdir)))
            kw["val_fold"] = val_fold
        path = run_export(checkpoint, prepared, **kw)
        click.echo(f"bundle: {path}")

    return build_cmd
