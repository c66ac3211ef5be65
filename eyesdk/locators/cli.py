"""``eyesdk models fetch-locator``: put the landmark locator's model files into the cache (set-up time, once)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import EyeSDKError


@click.group()
def models() -> None:
    """Model files eyesdk does not ship (fetched from the package index at set-up time)."""


@models.command("fetch-locator")
@click.option("--wheel", type=click.Path(dir_okay=False, path_type=Path),
              help="A local copy of the pinned mediapipe wheel (machines without the package index).")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put the files (default: the eyesdk cache, as the locator looks there).")
@click.option("--iris", is_flag=True, help="Also the iris-landmark model (only the crop-scale benchmark uses it).")
@click.option("--force", is_flag=True, help="Fetch again even when the files are present.")
def fetch_locator(wheel: Path | None, root: Path | None, iris: bool, force: bool) -> None:
    """Download mediapipe==0.10.21 with `pip download --no-deps`, check the pinned sha256s and extract the face
    detector and face mesh models (Apache-2.0) into the cache. mediapipe itself is not installed."""
    from . import models as files

    keys = files.LOCATOR_FILES + (("iris_landmarks",) if iris else ())
    try:
        paths = files.fetch(keys, wheel=wheel, root=root, force=force)
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    for key, path in paths.items():
        spec = files.MODEL_FILES[key]
        click.echo(f"{key}: {path} ({spec.size} bytes, sha256 {spec.sha256[:16]}...) - {spec.purpose}")
