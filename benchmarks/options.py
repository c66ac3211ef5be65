"""The options every ``eyesdk-bench`` command shares, defined once: bundle, matrix filters, threads, crop, output.

A subcommand composes them (``@options.model``, ``@options.backends`` ...), so ``--backends`` parses, errs and reads
the same in ``eyesdk-bench``, ``eyesdk-bench throughput`` and ``eyesdk-bench soak``. The parsers are
``eyesdk.cliutil``'s, the ones ``eyesdk`` and ``eyesdk-convert`` use too.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import numpy as np

from eyesdk.cliutil import comma_choices, comma_ints
from eyesdk.formats import BACKENDS, PRECISIONS

PROG = "eyesdk-bench"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}

model = click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Bundle directory (default: the embedded bundle).")
backends = click.option("--backends", multiple=True, callback=comma_choices(BACKENDS, "backend"),
                        help=f"Comma list of backends ({', '.join(BACKENDS)}); default: all the bundle ships.")
precisions = click.option("--precisions", multiple=True, callback=comma_choices(PRECISIONS, "precision"),
                          help=f"Comma list of precisions ({', '.join(PRECISIONS)}); default: all.")
crop = click.option("--crop", "crop_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                    help="An eye image to time on (PNG/JPEG/BMP; default: a synthetic 90x90 grey eye).")
quiet = click.option("--quiet", is_flag=True, help="No progress output on stderr.")


def threads(default: str = "1") -> Any:
    """``--threads 1,2``: one result per thread count."""
    return click.option("--threads", default=default, show_default=True, callback=comma_ints(1, "thread counts"),
                        help="Runtime threads; a comma list (1,2) sweeps them.")


def json_out(what: str) -> Any:
    return click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                        help=f"Write {what} here (atomically).")


def load_bundle(path: Path | None) -> Any:
    """The bundle to measure; without ``--model`` the embedded one, or a usage error saying to pass ``--model``."""
    from eyesdk.bundle import MANIFEST, default_bundle_path
    from eyesdk.bundle import load_bundle as load

    if path is None:
        default = default_bundle_path()
        if not (default / MANIFEST).is_file():
            raise click.UsageError(
                f"this eyesdk install has no embedded default bundle ({default} has no {MANIFEST}); "
                "pass the bundle to measure with --model path/to/bundle"
            )
        path = default
    return load(path)


def benchmark_crop(path: Path | None) -> tuple[np.ndarray, str]:
    """The decoded uint8 grey crop every contestant is timed on, and where it came from."""
    from .latency import synthetic_crop

    if path is None:
        return synthetic_crop(), "synthetic"
    from .data import decode_grey

    return decode_grey(path), str(path)


def no_match(bundle: Any) -> click.UsageError:
    """The usage error for filters that leave nothing of the bundle to measure."""
    shipped = ", ".join(f"{a['format']} {a['precision']}" for a in bundle.artifacts)
    return click.UsageError(f"bundle {bundle.name!r} has no artifact matching --backends/--precisions "
                            f"(it ships: {shipped})")


def command_line(ctx: click.Context) -> str:
    """The invocation as a copy-pasteable command, rebuilt from the parsed options (argv differs under test runners)."""
    words = [PROG] if ctx.parent is None else [PROG, str(ctx.info_name)]
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = ctx.params.get(param.name)
        default = param.get_default(ctx)
        if param.callback is not None and isinstance(default, str):
            default = param.callback(ctx, param, default)  # compare like with like: "1" was parsed to (1,)
        if value in (None, (), False) or value == default:
            continue
        flag = param.opts[0]
        if param.is_flag:
            words.append(flag)
        elif isinstance(value, tuple) and param.multiple:
            for item in value:
                words += [flag, str(item)]
        elif isinstance(value, tuple):
            words += [flag, ",".join(map(str, value))]
        else:
            words += [flag, str(value)]
    return shlex.join(words)
