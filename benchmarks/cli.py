"""``eyesdk-bench``: latency, device parity, accuracy drift and calibration of every artifact of a bundle, side by side.

Runs on the runtime extras only (numpy, the backends, click, Pillow for image files): never torch, so it can run on
the edge device being judged. Exit status: 0 all good, 2 bad usage, 3 a gate failed (parity always; drift, ECE and
p50 latency when their limits are given), 1 anything else.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from eyesdk.formats import BACKENDS, PRECISIONS

from .gates import EXIT_GATES_FAILED, Gates


def _comma_list(allowed: Sequence[str]) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], Any]:
    def parse(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...] | None:
        items = [v.strip() for value in values for v in value.split(",") if v.strip()]
        unknown = [v for v in items if v not in allowed]
        if unknown:
            raise click.BadParameter(f"{', '.join(unknown)} unknown; choose from {', '.join(allowed)}")
        return tuple(dict.fromkeys(items)) or None

    return parse


def _threads(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        threads = tuple(dict.fromkeys(int(v) for v in value.split(",") if v.strip()))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma list of thread counts, e.g. 1,2") from None
    if not threads or min(threads) < 1:
        raise click.BadParameter(f"{value!r}: thread counts must be integers >= 1")
    return threads


def _command_line(ctx: click.Context) -> str:
    """The invocation as a copy-pasteable command, rebuilt from the parsed options (argv differs under test runners)."""
    words = ["eyesdk-bench"]
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


class _Progress:
    """A tqdm bar on stderr when tqdm is importable, else one plain line per step."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        self._enabled = enabled
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, desc="eyesdk-bench", unit="step", file=sys.stderr, leave=False)

    def __call__(self, message: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(message[:60], refresh=False)
            self._bar.update()
        elif self._enabled:
            click.echo(f"[eyesdk-bench] {message}", err=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _load_bundle(model: Path | None) -> Any:
    from eyesdk.bundle import MANIFEST, default_bundle_path, load_bundle

    if model is None:
        default = default_bundle_path()
        if not (default / MANIFEST).is_file():
            raise click.UsageError(
                f"this eyesdk install has no embedded default bundle ({default} has no {MANIFEST}); "
                "pass the bundle to measure with --model path/to/bundle"
            )
        model = default
    return load_bundle(model)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Bundle directory (default: the embedded bundle).")
@click.option("--data", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Labelled data: MRL, CEW, open/closed folders or a path,label CSV; repeatable.")
@click.option("--subjects-from", metavar="FOLDS_JSON:FOLD",
              help="Keep only the subjects of one fold (or a comma list of folds) of a folds file.")
@click.option("--max-samples", type=click.IntRange(min=1), help="Score a fixed random subset of at most N crops.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache decoded crops here (keyed by files, sizes, mtimes and the contract).")
@click.option("--backends", multiple=True, callback=_comma_list(BACKENDS),
              help=f"Comma list of backends ({', '.join(BACKENDS)}); default: all the bundle ships.")
@click.option("--precisions", multiple=True, callback=_comma_list(PRECISIONS),
              help=f"Comma list of precisions ({', '.join(PRECISIONS)}); default: all.")
@click.option("--runs", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Timed batch-1 predict calls per artifact.")
@click.option("--threads", default="1", show_default=True, callback=_threads,
              help="Runtime threads; a comma list (1,2) sweeps them.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the eyesdk.bench/1 document here (atomically).")
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
@click.option("--quiet", is_flag=True, help="No progress output on stderr.")
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
    """Benchmark every backend x precision of a bundle on this device: latency, parity, drift, calibration."""
    from eyesdk.errors import EyeSDKError

    from . import schema
    from .data import load_labelled, pick_crop
    from .peers import check_peer_spec
    from .report import text_report, write_report
    from .suite import Settings, plan, run_bench

    ctx = click.get_current_context()
    gates = Gates(max_drift, max_ece, max_p50_us)
    if gates.needs_data and (not data or quick):
        why = "--quick skips data" if data else "they are measured on labelled data"
        raise click.UsageError(f"{' and '.join(gates.needs_data)} need --data ({why})")
    if subjects_from and not data:
        raise click.UsageError("--subjects-from filters --data; pass --data too")
    if quick and data:
        click.echo("--quick: --data is ignored (parity and a few timed calls only)", err=True)
        data = ()

    try:
        bundle = _load_bundle(model)
        settings = Settings(runs=runs, threads=threads, backends=backends, precisions=precisions, quick=quick)
        entries = plan(bundle, settings)
        if not entries:
            shipped = ", ".join(f"{a['format']} {a['precision']}" for a in bundle.artifacts)
            raise click.UsageError(f"bundle {bundle.name!r} has no artifact matching --backends/--precisions "
                                   f"(it ships: {shipped})")
        labelled = None
        if data:
            labelled = load_labelled(data, bundle.contract, subjects_from, max_samples, cache_dir,
                                     progress=not quiet)
        for spec in peer_specs:
            check_peer_spec(spec)
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc

    crop = pick_crop(labelled.samples) if labelled is not None else None
    steps = len(entries) + len(peer_specs) * (2 if labelled else 1) + 1 + len(settings.batch_sizes)
    steps += len(entries) if labelled else 0
    progress = _Progress(steps, enabled=not quiet)
    try:
        document = run_bench(bundle, settings, labelled, peer_specs, crop, gates, progress, _command_line(ctx))
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        progress.close()

    clean = schema.json_safe(document)
    schema.validate(clean)  # a document that breaks its own schema is a bug here; never hand it to a consumer
    click.echo(text_report(clean))
    if json_path is not None:
        schema.write_json(json_path, clean)
        click.echo(f"\nwrote {json_path}")
    if report_dir is not None:
        paths = write_report(clean, report_dir)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}")
    failures = clean["gates"]["failures"]
    if failures:
        for failure in failures:
            click.echo(f"GATE FAILED {failure['gate']}: {failure['message']}", err=True)
        ctx.exit(EXIT_GATES_FAILED)


if __name__ == "__main__":
    main()
