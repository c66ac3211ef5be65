"""``eyesdk-bench``: latency, device parity, accuracy drift and calibration of every artifact of a bundle, side by side,
and the focused measurements beside it as subcommands (``eyesdk-bench throughput | peer-latency | breakdown | soak``).

Runs on the runtime extras only (numpy, the backends, click, Pillow for image files): never torch, so it can run on
the edge device being judged. Exit status: 0 all good, 2 bad usage, 3 a gate failed (parity always; drift, ECE and
p50 latency when their limits are given; a subcommand's own limits), 1 anything else.

A subcommand is a click command in its own module, registered by one line in :data:`SUBCOMMANDS` and imported only
when it is run or listed, so a slow or optional import of one never costs the others.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from . import options
from .gates import EXIT_GATES_FAILED, Gates

# name -> "module:attribute" of a click command. Registering a subcommand is one line here.
SUBCOMMANDS: dict[str, str] = {
    "throughput": "eyesdk.benchmarks.throughput:command",
    "peer-latency": "eyesdk.benchmarks.peer_latency:command",
    "breakdown": "eyesdk.benchmarks.breakdown:command",
    "soak": "eyesdk.benchmarks.soak:command",
    "stream": "eyesdk.benchmarks.stream.cli:stream",
}


class BenchGroup(click.Group):
    """The matrix benchmark when no subcommand is named; the registered subcommands, imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return super().get_command(ctx, name)
        module, _, attribute = SUBCOMMANDS[name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"eyesdk-bench subcommand {name!r}: {SUBCOMMANDS[name]} is not a click command")
        return command


def _options_given(ctx: click.Context) -> list[str]:
    """The matrix options given on the command line (they mean nothing to a subcommand)."""
    return [param.opts[0] for param in ctx.command.params
            if isinstance(param, click.Option) and param.name is not None
            and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE]


@click.group(cls=BenchGroup, invoke_without_command=True, subcommand_metavar="[COMMAND [ARGS]...]",
             context_settings=options.CONTEXT)
@options.model
@click.option("--data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled data: MRL, CEW, open/closed folders or a path,label CSV; repeatable.")
@click.option("--subjects-from", metavar="FOLDS_JSON:FOLD",
              help="Keep only the subjects of one fold (or a comma list of folds) of a folds file.")
@click.option("--max-samples", type=click.IntRange(min=1), help="Score a fixed random subset of at most N crops.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache decoded crops here (keyed by files, sizes, mtimes and the contract).")
@options.backends
@options.precisions
@click.option("--runs", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Timed batch-1 predict calls per artifact.")
@options.threads()
@options.json_out("the eyesdk.bench/1 document")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.md, report.html (self-contained, inline SVG) and bench.json here.")
@click.option("--peer", "peer_specs", multiple=True, metavar="NAME:PATH",
              help="Run a peer side by side, e.g. omz-open-closed-eye:open-closed-eye.onnx (or its .xml IR).")
@click.option("--max-drift", type=click.FloatRange(min=0), metavar="PP",
              help="Fail (exit 3) when |Δaccuracy| vs the fp32 reference exceeds PP percentage points.")
@click.option("--max-ece", type=click.FloatRange(min=0, max=1), metavar="X", help="Fail when an ECE exceeds X.")
@click.option("--max-p50-us", type=click.FloatRange(min=0), metavar="US",
              help="Fail when a batch-1 p50 latency exceeds US microseconds.")
@click.option("--quick", is_flag=True, help="Smoke test: parity and a few timed calls only (no data, no throughput).")
@options.quiet
def main(
    model: Path | None,
    data: tuple[Path, ...],
    subjects_from: str | None,
    max_samples: int | None,
    cache_dir: Path | None,
    backends: tuple[str, ...] | None,
    precisions: tuple[str, ...] | None,
    runs: int,
    threads: tuple[int, ...],
    json_path: Path | None,
    report_dir: Path | None,
    peer_specs: tuple[str, ...],
    max_drift: float | None,
    max_ece: float | None,
    max_p50_us: float | None,
    quick: bool,
    quiet: bool,
) -> None:
    """Benchmark every backend x precision of a bundle on this device: latency, parity, drift, calibration.

    Without a subcommand this is the matrix run below; each subcommand has its own options (COMMAND --help).
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        given = _options_given(ctx)
        if given:
            raise click.UsageError(f"{', '.join(given)} before {ctx.invoked_subcommand!r} belong to the matrix run; "
                                   f"put the subcommand's options after it (eyesdk-bench {ctx.invoked_subcommand} "
                                   "--help)")
        return
    gates = Gates(max_drift, max_ece, max_p50_us)
    data = _check_usage(gates, data, subjects_from, quick)
    from .suite import Settings

    settings = Settings(runs=runs, threads=threads, backends=backends, precisions=precisions, quick=quick)
    bundle, labelled = _prepare(model, settings, peer_specs, quiet, data, subjects_from, max_samples, cache_dir)
    document = _measure(bundle, settings, labelled, peer_specs, gates, quiet, options.command_line(ctx))
    _publish(ctx, document, json_path, report_dir)


def _check_usage(gates: Gates, data: tuple[Path, ...], subjects_from: str | None, quick: bool) -> tuple[Path, ...]:
    """Refuse option combinations that cannot mean anything; ``--quick`` drops ``--data`` (with a note)."""
    if gates.needs_data and (not data or quick):
        why = "--quick skips data" if data else "they are measured on labelled data"
        raise click.UsageError(f"{' and '.join(gates.needs_data)} need --data ({why})")
    if subjects_from and not data:
        raise click.UsageError("--subjects-from filters --data; pass --data too")
    if quick and data:
        click.echo("--quick: --data is ignored (parity and a few timed calls only)", err=True)
        return ()
    return data


def _prepare(model: Path | None, settings: Any, peer_specs: tuple[str, ...], quiet: bool, data: tuple[Path, ...],
             subjects_from: str | None, max_samples: int | None, cache_dir: Path | None) -> tuple[Any, Any]:
    """Everything that can fail on the user's input, before minutes of measuring: bundle, matrix, data, peers."""
    from eyesdk.errors import EyeSDKError

    from .data import load_labelled
    from .peers import check_peer_spec
    from .suite import plan

    try:
        bundle = options.load_bundle(model)
        if not plan(bundle, settings):
            raise options.no_match(bundle)
        labelled = None
        if data:
            labelled = load_labelled(data, bundle.contract, subjects_from, max_samples, cache_dir,
                                     progress=not quiet)
        for spec in peer_specs:
            check_peer_spec(spec)
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return bundle, labelled


def _measure(bundle: Any, settings: Any, labelled: Any, peer_specs: tuple[str, ...], gates: Gates, quiet: bool,
             command: str) -> dict[str, Any]:
    """The run itself, with a progress bar: the JSON-safe document, checked against its own schema."""
    from eyesdk.errors import EyeSDKError
    from eyesdk.progress import Progress

    from . import schema
    from .data import pick_crop
    from .suite import plan, run_bench

    crop = pick_crop(labelled.samples) if labelled is not None else None
    entries = len(plan(bundle, settings))
    steps = entries + len(peer_specs) * (2 if labelled else 1) + 1 + len(settings.batch_sizes)
    steps += entries if labelled else 0
    with Progress(steps, "eyesdk-bench", enabled=not quiet, unit="step", plain_lines=True) as progress:
        try:
            document = run_bench(bundle, settings, labelled, peer_specs, crop, gates, progress.step, command)
        except (EyeSDKError, OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    clean = schema.json_safe(document)
    schema.validate(clean)  # a document that breaks its own schema is a bug here; never hand it to a consumer
    return clean


def _publish(ctx: click.Context, document: dict[str, Any], json_path: Path | None, report_dir: Path | None) -> None:
    """Tables on stdout, the JSON and the report files, then exit 3 when a gate failed."""
    from . import schema
    from .report import text_report, write_report

    click.echo(text_report(document))
    if json_path is not None:
        schema.write_json(json_path, document)
        click.echo(f"\nwrote {json_path}")
    if report_dir is not None:
        paths = write_report(document, report_dir)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")
    failures = document["gates"]["failures"]
    if failures:
        for failure in failures:
            click.echo(f"GATE FAILED {failure['gate']}: {failure['message']}", err=True)
        ctx.exit(EXIT_GATES_FAILED)


if __name__ == "__main__":
    main(prog_name=options.PROG)
