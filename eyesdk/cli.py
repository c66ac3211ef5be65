"""``eyesdk`` command line: ``predict IMAGE...``, ``info``, ``tune``.

Choices for --backend/--precision come from the format table, so a new backend or precision shows up here without
touching this file. Per-image failures (missing, a directory, unreadable, too small) are reported on that image's
line and make the exit status 1, so one bad file in a batch neither hides the others' results nor passes silently.
In text mode a field holding a character that is not printable (a newline or tab in a file name or message) is
printed as a Python string literal, so no file name can forge a result line; ``--json`` escapes as JSON does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import EyeSDKError
from .formats import BACKENDS, PRECISIONS

_model_option = click.option(
    "--model",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Bundle directory (default: the embedded bundle).",
)
_threads_option = click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True)


def _load_bundle(model: Path | None):
    from .bundle import load_bundle, load_default_bundle

    return load_bundle(model) if model is not None else load_default_bundle()


def _field(text: str) -> str:
    """A text-mode output field that cannot break its line: as is when printable, else a Python string literal."""
    return text if text.isprintable() else repr(text)


def _fail(exc: BaseException) -> None:
    raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(__version__, message="eyesdk %(version)s")
def main() -> None:
    """Eye open/closed classification on ONNX Runtime, OpenVINO or TFLite."""


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))  # checked per image, below
@_model_option
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", *PRECISIONS]), default="auto", show_default=True)
@_threads_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def predict(
    images: tuple[Path, ...], model: Path | None, backend: str, precision: str, threads: int, as_json: bool
) -> None:
    """Classify eye crops: one line per IMAGE (path, label, P(open))."""
    from .api import EyeState

    try:
        es = EyeState(model=_load_bundle(model), backend=backend, precision=precision, threads=threads)
    except (EyeSDKError, OSError, ValueError) as exc:
        _fail(exc)
    failed = 0
    for image in images:
        try:
            result = es.predict(image)
        except (EyeSDKError, OSError, ValueError) as exc:
            failed += 1
            error = f"{type(exc).__name__}: {exc}"
            if as_json:
                click.echo(json.dumps({"image": str(image), "error": error}))
            else:
                click.echo(f"{_field(str(image))}\terror\t{_field(error)}")
            continue
        if as_json:
            record = {
                "image": str(image),
                "label": result.label,
                "is_open": result.is_open,
                "prob_open": round(result.prob_open, 6),
                "logit": round(result.logit, 6),
                "backend": es.backend,
                "precision": es.precision,
            }
            click.echo(json.dumps(record))
        else:
            click.echo(f"{_field(str(image))}\t{result.label}\t{result.prob_open:.4f}")
    if failed:
        sys.exit(1)


def _info(model: Path | None, threads: int) -> dict[str, Any]:
    from . import __version__, backends, tune
    from .device import probe

    device = probe()
    info: dict[str, Any] = {
        "eyesdk": __version__,
        "device": device.to_dict(),
        "backends": {b: {"installed": backends.is_available(b), "version": device.backends.get(b)} for b in BACKENDS},
        "cache_dir": None if (cache := tune.cache_dir()) is None else str(cache),
    }
    try:
        bundle = _load_bundle(model)
    except (EyeSDKError, OSError) as exc:
        info["bundle"] = {"error": f"{type(exc).__name__}: {exc}"}
        return info
    info["bundle"] = {
        "path": str(bundle.path),
        "name": bundle.name,
        "sha256": bundle.sha256,
        "artifacts": [f"{a['format']} {a['precision']}" for a in bundle.artifacts],
    }
    cached = tune.read_cache(bundle, threads)
    info["cached_choice"] = (
        {"backend": cached.backend, "precision": cached.precision, "p50_us": cached.p50_us, "path": str(cached.path)}
        if cached
        else None
    )
    info["runs"] = _runs(bundle, threads)
    return info


def _runs(bundle: Any, threads: int) -> dict[str, Any]:
    """What `auto` runs here: the predict runner and the one batches of _BATCH_MIN crops or more go to."""
    from .api import EyeState

    try:
        es = EyeState(bundle, threads=threads)
    except (EyeSDKError, OSError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "predict": f"{es.backend} {es.precision}",
        "batches": f"{es.batch_backend} {es.precision}",
        "batch_reason": es.batch_reason,
        "batch_rejected": [f"{c}: {r}" for c, r in es.batch_rejected],
        "pipelined": es.pipelined,
    }


@main.command()
@_model_option
@_threads_option
@click.option("--json", "as_json", is_flag=True)
def info(model: Path | None, threads: int, as_json: bool) -> None:
    """Show the device, installed backends, the bundle and the cached tuning choice."""
    data = _info(model, threads)
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    device = data["device"]
    click.echo(f"eyesdk {data['eyesdk']}")
    click.echo(f"device: {device['arch']} {device['system']} {device['os_release']}, {device['cpu_model']}, "
               f"{device['cpu_count']} CPUs, python {device['python']}")
    click.echo(f"fingerprint: {device['fingerprint']}")
    for name, b in data["backends"].items():
        state = (b["version"] or "installed") if b["installed"] else "not installed"
        click.echo(f"backend {name}: {state}")
    bundle = data["bundle"]
    if "error" in bundle:
        click.echo(f"bundle: {bundle['error']}")
        return
    click.echo(f"bundle: {bundle['name']} at {bundle['path']} (sha256 {bundle['sha256'][:16]})")
    click.echo(f"artifacts: {', '.join(bundle['artifacts'])}")
    cached = data["cached_choice"]
    if cached:
        click.echo(f"cached choice: {cached['backend']} {cached['precision']} ({cached['path']})")
    else:
        click.echo("cached choice: none (run `eyesdk tune`)")
    runs = data["runs"]
    if "error" in runs:
        click.echo(f"auto runs: {runs['error']}")
        return
    click.echo(f"auto runs: predict on {runs['predict']}, batches on {runs['batches']}"
               + (f" ({runs['batch_reason']})" if runs["batch_reason"] else "")
               + ("; predict_batch pipelined (threads >= 2)" if runs["pipelined"] else ""))
    for line in runs["batch_rejected"]:
        click.echo(f"  batches passed over {line}")


@main.command()
@_model_option
@_threads_option
@click.option("--json", "as_json", is_flag=True)
def tune(model: Path | None, threads: int, as_json: bool) -> None:
    """Time every installed backend x precision of the bundle here and cache the fastest for `auto`."""
    from . import tune as tuning

    try:
        result = tuning.tune(_load_bundle(model), threads=threads)
    except (EyeSDKError, OSError) as exc:
        _fail(exc)
    if as_json:
        data = result.to_dict()
        data["path"] = str(result.path)
        click.echo(json.dumps(data, indent=1))
        return
    for key, us in sorted(result.p50_us.items(), key=lambda kv: kv[1]):
        mark = "*" if key == f"{result.backend} {result.precision}" else " "
        click.echo(f"{mark} {key:<22} {us:8.1f} µs")
    for key, reason in result.rejected.items():
        click.echo(f"  {key:<22} skipped: {reason}")
    click.echo(f"chosen: {result.backend} {result.precision}; cached in {result.path}")


# Stream layer commands (their own modules): `eyesdk watch`, `eyesdk models fetch-locator`.
from .locators.cli import models as _models  # noqa: E402
from .stream.cli import watch as _watch  # noqa: E402

main.add_command(_watch)
main.add_command(_models)

if __name__ == "__main__":  # pragma: no cover
    main()
