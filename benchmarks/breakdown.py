"""``eyesdk-bench breakdown``: where one ``EyeState.predict`` call spends its time.

Each stage of the public call (grey conversion, the contract's resize, standardisation, inference through
``EyeState.logits``) is timed alone on the same crop, in the same interleaved rounds as the whole call
(``eyesdk.timing``), and reported as a share of it. The shares do not add up to 100 %: the rest is the Python glue
(argument checks, sigmoid, the result object) and the stages' own call overhead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click
import numpy as np

from eyesdk.formats import BACKENDS, PRECISIONS
from eyesdk.timing import interleaved_us

from . import options

WHOLE = "whole predict"


def stages(es: Any, crop: np.ndarray) -> dict[str, Callable[[], object]]:
    """The whole call and each of its stages, each on the input the previous stage produced from ``crop``."""
    from eyesdk.preprocess import resize_grey, standardize, standardize_step, to_grey

    contract = es.bundle.contract
    grey = to_grey(crop)
    resized = resize_grey(grey, contract.size)
    x = standardize_step(contract)(resized).reshape(1, 1, contract.size, contract.size)
    timed = {
        WHOLE: partial(es.predict, crop),
        "grey conversion": partial(to_grey, crop),
        f"resize to {contract.size}x{contract.size}": partial(resize_grey, grey, contract.size),
    }
    if not contract.normalization_in_model:  # else the artifact standardizes its input: inference includes it
        timed["standardization"] = partial(standardize, resized, contract.std_floor)
    return {**timed, f"inference ({es.backend} {es.precision})": partial(es.logits, x)}


def shares(times: dict[str, np.ndarray]) -> list[tuple[str, float, float]]:
    """(stage, median µs, share of the whole call's median) per stage, the whole call first."""
    medians = {name: float(np.median(values)) for name, values in times.items()}
    whole = medians[WHOLE]
    return [(name, us, us / whole if whole > 0 else float("nan")) for name, us in medians.items()]


@click.command("breakdown", context_settings=options.CONTEXT)
@options.model
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", *PRECISIONS]), default="auto", show_default=True)
@options.crop
@click.option("--runs", type=click.IntRange(min=1), default=3000, show_default=True,
              help="Timed calls per stage, in 10 interleaved rounds.")
def command(model: Path | None, backend: str, precision: str, crop_path: Path | None, runs: int) -> None:
    """Time each stage of one predict call alone on the same crop, as shares of the whole call."""
    from eyesdk.api import EyeState
    from eyesdk.errors import EyeSDKError

    try:
        bundle = options.load_bundle(model)
        crop, source = options.benchmark_crop(crop_path)
        es = EyeState(bundle, backend=backend, precision=precision)
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    times = interleaved_us(stages(es, crop), runs, rounds=10, warmup=100)
    click.echo(f"crop: {source}, {crop.shape[0]}x{crop.shape[1]} uint8; {es.backend} {es.precision}; "
               f"median of {runs} calls per stage")
    for name, us, share in shares(times):
        click.echo(f"  {name:<32} {us:7.1f} µs  {share:6.1%}")
