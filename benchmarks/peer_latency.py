"""``eyesdk-bench peer-latency``: batch-1 latency of ``EyeState.predict`` against a peer model, in one process.

The comparison is deliberately lopsided against us: our side is the whole public call on one decoded uint8 grey crop
(validation, grey conversion, contract resize, standardisation, inference, temperature, threshold); the peer's
headline side is only its bare inference call (``session.run`` for ONNX) on an input prepared once, by the peer's
own documented contract (``benchmarks/peers.py``: its resize, normalisation and layout, never ours), 1 thread. The
peer's whole call (its preprocessing of the same crop + inference) is timed beside it. Every contestant runs in the
same interleaved rounds (``eyesdk.timing``), so load changes hit all of them alike: read the ratios.

``--max-ratio`` turns "auto's p50 / the peer's bare run p50" into a gate (exit 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from eyesdk.timing import interleaved_us, summarize_us

from . import latency, matrix, options
from .gates import EXIT_GATES_FAILED

SCHEMA = "eyesdk.bench-peer-latency/1"
WARMUP = 200
TARGET_RATIO = 0.65  # issue 11: the whole predict at batch 1 against the peer's bare session.run, p50 over p50


def ours(bundle: Any, every: bool) -> dict[str, Any]:
    """``ours auto (backend precision)``, plus every installed artifact with ``every``: name -> EyeState."""
    from eyesdk.api import EyeState

    auto = EyeState(bundle)
    states = {f"ours auto ({auto.backend} {auto.precision})": auto}
    if every:
        for cell in matrix.installed_cells(bundle):
            states[f"ours {cell.key}"] = EyeState(bundle, backend=cell.backend, precision=cell.precision)
    return states


def rows(times: dict[str, Any], peer_name: str, our_keys: list[str]) -> list[dict[str, Any]]:
    """The peer's bare run, its whole call, then ours: each latency summary and its p50 over both of the peer's."""
    names = {f"peer-run:{peer_name}": "peer bare session.run", f"peer:{peer_name}": "peer whole call",
             **{key: key for key in our_keys}}
    summaries = {key: summarize_us(times[key]) for key in names}
    run_p50, whole_p50 = (summaries[f"{k}:{peer_name}"]["p50"] for k in ("peer-run", "peer"))
    return [{"contestant": name, **summaries[key],
             "vs_peer_run": summaries[key]["p50"] / run_p50 if run_p50 else None,
             "vs_peer": summaries[key]["p50"] / whole_p50 if whole_p50 else None} for key, name in names.items()]


def format_table(table: list[dict[str, Any]]) -> str:
    head = f"{'contestant':<36} {'p50 µs':>8} {'p90 µs':>8} {'x peer run':>10} {'x peer':>8}"
    lines = [head, "-" * len(head)]
    for r in table:
        lines.append(f"{r['contestant']:<36} {r['p50']:>8.1f} {r['p90']:>8.1f} {_ratio(r['vs_peer_run']):>10} "
                     f"{_ratio(r['vs_peer']):>8}")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


@click.command("peer-latency", context_settings=options.CONTEXT)
@click.option("--peer", "peer_spec", required=True, metavar="NAME:PATH",
              help="The peer model, e.g. omz-open-closed-eye:path/to/open-closed-eye.onnx (or its .xml IR).")
@options.model
@options.crop
@click.option("--all", "every", is_flag=True, help="Also every installed backend x precision, not only auto.")
@click.option("--runs", type=click.IntRange(min=1), default=6000, show_default=True,
              help="Timed calls per contestant.")
@click.option("--rounds", type=click.IntRange(min=1), default=30, show_default=True, help="Interleaved rounds.")
@click.option("--max-ratio", type=click.FloatRange(min=0), metavar="X",
              help="Fail (exit 3) when auto's p50 / the peer's bare session.run p50 exceeds X (e.g. 0.65).")
@options.json_out("the latencies and ratios as JSON")
def command(peer_spec: str, model: Path | None, crop_path: Path | None, every: bool, runs: int, rounds: int,
            max_ratio: float | None, json_path: Path | None) -> None:
    """Our whole predict call against a peer's bare inference call at batch 1, 1 thread, in one run."""
    from eyesdk.bundle import file_sha256
    from eyesdk.errors import EyeSDKError

    from .peers import load_peer
    from .schema import write_json
    from .suite import device_block, model_block

    ctx = click.get_current_context()
    try:
        bundle = options.load_bundle(model)
        crop, source = options.benchmark_crop(crop_path)
        peer = load_peer(peer_spec, threads=1)
        states = ours(bundle, every)
    except (EyeSDKError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    contestants = latency.batch1_contestants(states, [peer], crop)
    times = interleaved_us(contestants, runs, rounds, WARMUP)
    table = rows(times, peer.name, list(states))
    bare, auto = table[0], table[2]  # the peer's bare run, then (after its whole call) ours auto
    click.echo(f"crop: {source}, {crop.shape[0]}x{crop.shape[1]} uint8; bundle: {bundle.path}")
    click.echo(f"peer: {peer.name} ({peer.path}, {peer.runtime}, 1 thread); {runs} calls each in {rounds} "
               "interleaved rounds")
    click.echo(format_table(table))
    click.echo(f"{auto['contestant']}: {_ratio(auto['vs_peer_run'])} the peer's bare session.run "
               f"({auto['p50']:.1f} vs {bare['p50']:.1f} µs p50)")
    if auto["vs_peer_run"] is not None:
        met = auto["vs_peer_run"] <= TARGET_RATIO
        click.echo(f"issue 11 target <= {TARGET_RATIO:.2f}x the peer's bare session.run: "
                   f"{'met' if met else 'not met'} ({auto['vs_peer_run']:.3f}x)")
    if json_path is not None:
        write_json(json_path, {
            "schema": SCHEMA, "command": options.command_line(ctx), "device": device_block(),
            "model": model_block(bundle),
            "peer": {"name": peer.name, "spec": peer.spec, "path": str(peer.path), "sha256": file_sha256(peer.path),
                     "runtime": peer.runtime},
            "crop": {"source": source, "height": int(crop.shape[0]), "width": int(crop.shape[1])},
            "runs": runs, "rounds": rounds, "results": table,
        })
        click.echo(f"wrote {json_path}")
    if max_ratio is not None and (auto["vs_peer_run"] is None or auto["vs_peer_run"] > max_ratio):
        click.echo(f"GATE FAILED max_ratio: {auto['contestant']} is {_ratio(auto['vs_peer_run'])} the peer's bare "
                   f"session.run > --max-ratio {max_ratio:g}", err=True)
        ctx.exit(EXIT_GATES_FAILED)
