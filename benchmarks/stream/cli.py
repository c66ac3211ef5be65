"""``eyesdk-bench stream ...``: the stream layer's measurements, one subcommand each.

    events      event accuracy on real crops of subjects the bundle did not train on (the issue's targets)
    noise       per-frame logit noise of real crops (what the temporal filter was designed from)
    gate        the quality gate on real and degraded crops
    crop-scale  which crop scale the classifier likes
    locators    detection rate and eye error on real faces from registry packages
    speed       end-to-end frames/s at 640 x 480
    memory      memory over an hour of stream time
    eyeblink8   blink F1 on Eyeblink8 / Talking Face videos (for users who have them)

Each prints a short table and, with ``--json``, writes the whole result (atomically) with the command that made it.
Results cite the data: MRL Eye Dataset (R. Fusek, ISVC 2018), CEW (F. Song et al., Pattern Recognition 47(9), 2014).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

import click

from .. import options

LICENCES = {
    "mrl": "MRL Eye Dataset - R. Fusek, 'Pupil localization using geodesic distance', ISVC 2018; research use",
    "cew": "CEW - F. Song, X. Tan, X. Liu, S. Chen, Pattern Recognition 47(9), 2014; research use",
}
TARGETS = {"events_f1": 0.95, "false_alarms_per_awake_hour": 1.0, "perclos_mae_points": 1.5}

_backend = click.option("--backend", type=click.Choice(["auto", "onnxruntime", "openvino", "tflite"]),
                        default="auto", show_default=True, help="Classifier backend.")
_locator_models = click.option("--locator-models", type=click.Path(file_okay=False, path_type=Path),
                               help="Folder with the fetched locator models (default: the eyesdk cache).")
_mrl = click.option("--data", "mrl", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
                    help="The MRL Eye Dataset folder (<subject>/<file>.png).")


def _say(quiet: bool):
    return (lambda message: None) if quiet else (lambda message: click.echo(f"[stream] {message}", err=True))


def _eye_state(model: Path | None, backend: str) -> Any:
    from eyesdk.api import EyeState

    return EyeState(model=options.load_bundle(model), backend=backend, precision="fp32" if backend != "auto" else
                    "auto", threads=1)


def _write(path: Path | None, document: dict[str, Any]) -> None:
    if path is None:
        return
    from ..schema import write_json

    write_json(path, document)  # the bench's one JSON writer: atomic, numpy-safe, NaN as null
    click.echo(f"wrote {path}", err=True)


def _document(kind: str, ctx: click.Context, eye_state: Any | None, **data: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": f"eyesdk.bench.stream-{kind}/1", "command": options.command_line(ctx),
                           "python": platform.python_version(), "machine": platform.machine()}
    if eye_state is not None:
        doc["bundle"] = {"name": eye_state.bundle.name, "sha256": eye_state.bundle.sha256,
                         "backend": f"{eye_state.backend} {eye_state.precision}"}
    doc.update(data)
    return doc


@click.group(context_settings=options.CONTEXT)
def stream() -> None:
    """Measurements of the stream layer (EyeStream, locators, eyesdk watch)."""


@stream.command(context_settings=options.CONTEXT)
@_mrl
@options.model
@click.option("--subjects-from", metavar="FOLDS_JSON:FOLD", help="Subjects to play (must be ones the bundle did "
              "not train on; needed when its manifest does not record its folds file).")
@click.option("--dev", is_flag=True, help="Play the subjects the bundle TRAINED on instead (for choosing settings; "
              "never a result). Needs --subjects-from naming the held-out fold(s) to exclude.")
@click.option("--minutes-awake", type=click.FloatRange(min=0.5), default=12.0, show_default=True)
@click.option("--minutes-drowsy", type=click.FloatRange(min=0.0), default=3.0, show_default=True)
@click.option("--mode", type=click.Choice(["frames", "logits"]), default="frames", show_default=True,
              help="frames: every crop through the whole stream; logits: each crop measured once, then replayed.")
@click.option("--sweep", metavar="JSON", help='Extra variants: a JSON object name -> {section: {field: value}}, e.g. '
              '\'{"exit0": {"filter": {"exit_closed": 0.0}}}\'.')
@click.option("--sweep-only", is_flag=True, help="With --sweep: run the default and the sweep's variants only.")
@click.option("--figure", "figure_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the timeline figure (SVG) of one subject's first 90 s of drowsy script.")
@click.option("--figure-subject", metavar="SUBJECT", help="Subject of the figure, e.g. mrl:s0037 (default: the one "
              "with the most scripted closures in the span).")
@_backend
@options.json_out("the event-accuracy document")
@options.quiet
def events(mrl: Path, model: Path | None, subjects_from: str | None, dev: bool, minutes_awake: float,
           minutes_drowsy: float, mode: str, sweep: str | None, sweep_only: bool, figure_path: Path | None,
           figure_subject: str | None, backend: str, json_path: Path | None, quiet: bool) -> None:
    """Blink / closure F1, false long closures and alarms per awake hour, PERCLOS error, alarm latency."""
    from . import events_bench
    from .playback import load_subjects
    from .subjects import SeenSubjectsError, unseen_subjects

    ctx = click.get_current_context()
    say = _say(quiet)
    eye_state = _eye_state(model, backend)
    try:
        chosen = unseen_subjects(eye_state.bundle.manifest, subjects_from)
    except (SeenSubjectsError, ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from exc
    mrl_subjects = {s for s in chosen.subjects if s.startswith("mrl:")}
    if dev:
        from eyesdk.converters.datasets import read_mrl

        everyone = {s.subject for s in read_mrl(mrl)}
        mrl_subjects = everyone - mrl_subjects
    say(f"{'DEV (trained-on)' if dev else 'unseen'} subjects: {', '.join(sorted(mrl_subjects))} ({chosen.how})")
    crops = load_subjects(mrl, sorted(mrl_subjects))
    configs = events_bench.variants()
    if sweep_only:
        configs = {"default": configs["default"]}
    if sweep:
        from eyesdk.safeio import parse_json
        from eyesdk.stream.stream import stream_config_of

        try:
            variants = parse_json(sweep.encode())
            if not isinstance(variants, dict):
                raise TypeError("expected a JSON object: variant name -> {section: {field: value}}")
            configs.update({name: stream_config_of(sections) for name, sections in variants.items()})
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"--sweep: {exc}") from exc
    span = None
    if figure_path is not None:
        start = 60.0 * min(minutes_awake, 5.0)  # the first drowsy spell starts after the first awake spell
        span = (start - 20.0, start + 70.0)
    result = events_bench.run(eye_state, crops, minutes_awake, minutes_drowsy, mode=mode, configs=configs,
                              progress=say, figure=span)
    traces = result.pop("traces")
    pooled = result["variants"]["default"]["pooled"]
    checks = {
        "events_f1": pooled["events"]["f1"] >= TARGETS["events_f1"],
        "false_alarms_per_awake_hour": (pooled["false_alarms_per_awake_hour"] or 0.0)
        <= TARGETS["false_alarms_per_awake_hour"],
        "perclos_mae_points": pooled["perclos_mae_points"] is not None
        and pooled["perclos_mae_points"] <= TARGETS["perclos_mae_points"],
    }
    click.echo(f"{'variant':<12} {'F1':>6} {'P':>6} {'R':>6} {'blink F1':>8} {'false>=1s/h':>11} "
               f"{'false alarms/h':>14} {'PERCLOS MAE':>11} {'latency p50':>11}")
    for name, variant in result["variants"].items():
        p = variant["pooled"]
        latencies = [r["alarm_latency_s"]["median"] for r in variant["subjects"].values()
                     if r["alarm_latency_s"]["median"] is not None]
        click.echo(f"{name:<12} {p['events']['f1']:6.3f} {p['events']['precision']:6.3f} {p['events']['recall']:6.3f} "
                   f"{p['blinks']['f1']:8.3f} {p['false_long_per_awake_hour']:11.2f} "
                   f"{p['false_alarms_per_awake_hour']:14.2f} {p['perclos_mae_points']:11.2f} "
                   f"{(sorted(latencies)[len(latencies) // 2] if latencies else float('nan')):11.3f}")
    click.echo(f"targets {TARGETS}: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in checks.items()))
    if dev:
        click.echo("DEV subjects (the bundle trained on them): for choosing settings, not a result")
    if figure_path is not None and traces:
        from eyesdk.atomic import atomic_write_text
        from eyesdk.stream import EventConfig, FilterConfig

        from .figure import timeline_svg

        if figure_subject is not None and figure_subject not in traces:
            raise click.BadParameter(f"{figure_subject!r} is not one of the subjects played: {', '.join(traces)}",
                                     param_hint="--figure-subject")
        subject = figure_subject or max(traces, key=lambda s: len(traces[s]["truth"]))
        t = traces[subject]
        thresholds = {"enter closed": FilterConfig().enter_closed, "exit": FilterConfig().exit_closed,
                      "confirm": -EventConfig().confirm_depth}
        svg = timeline_svg(f"{subject}: {chosen.how if not dev else 'dev'}; crops played along a scripted timeline",
                           *t["span"], t["truth"], t["trace"], t["events"], t["alarms"], thresholds)
        atomic_write_text(figure_path, svg)
        click.echo(f"wrote {figure_path} ({subject})", err=True)
    _write(json_path, _document(
        "events", ctx, eye_state, subjects={"mrl": sorted(mrl_subjects), "unseen": not dev, "verified": chosen.verified,
                                            "how": chosen.how, "folds_file": chosen.folds_file,
                                            "folds": list(chosen.folds)},
        data={"mrl": str(mrl), "licence": LICENCES["mrl"]}, targets=TARGETS, targets_met=checks, **result))


@stream.command(context_settings=options.CONTEXT)
@_mrl
@options.model
@click.option("--subjects-from", metavar="FOLDS_JSON:FOLD", help="Subjects to measure (default: as for events).")
@_backend
@options.json_out("the noise document")
@options.quiet
def noise(mrl: Path, model: Path | None, subjects_from: str | None, backend: str, json_path: Path | None,
          quiet: bool) -> None:
    """Per-frame logit noise of real crops in video order, per subject and eye state."""
    from eyesdk.stream import EyeStream

    from . import events_bench
    from . import noise as noise_bench
    from .playback import load_subjects
    from .subjects import SeenSubjectsError, unseen_subjects

    ctx = click.get_current_context()
    eye_state = _eye_state(model, backend)
    try:
        chosen = unseen_subjects(eye_state.bundle.manifest, subjects_from)
    except (SeenSubjectsError, ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from exc
    crops = load_subjects(mrl, sorted(s for s in chosen.subjects if s.startswith("mrl:")))
    stream_ = EyeStream(locator=None, eye_state=eye_state)
    measured = {c.subject: events_bench.measure(stream_, c) for c in crops}
    result = noise_bench.run(measured, sorted(measured))
    click.echo(f"{'subject':<11} {'state':<6} {'n':>5} {'median':>7} {'sd':>5} {'p5':>6} {'p95':>6} {'lag1':>5} "
               f"{'wrong':>6}  runs of wrong frames")
    for subject, states in result["subjects"].items():
        for state, st in states.items():
            if st["n"] < 3:
                click.echo(f"{subject:<11} {state:<6} {st['n']:>5}")
                continue
            click.echo(f"{subject:<11} {state:<6} {st['n']:>5} {st['median']:7.2f} {st['sd']:5.2f} {st['p5']:6.2f} "
                       f"{st['p95']:6.2f} {st['lag1_autocorrelation']:5.2f} {st['wrong_side_of_threshold']:6.3f}  "
                       f"{st['wrong_runs']}")
    _write(json_path, _document("noise", ctx, eye_state, chosen=chosen.how, data={"mrl": str(mrl),
                                                                                  "licence": LICENCES["mrl"]},
                                **result))


@stream.command(context_settings=options.CONTEXT)
@click.option("--data", "sources", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="MRL and/or CEW folders; repeatable.")
@options.model
@click.option("--sample", type=click.IntRange(min=10), default=3000, show_default=True,
              help="Crops degraded for the accuracy table.")
@_backend
@options.json_out("the gate document")
@options.quiet
def gate(sources: tuple[Path, ...], model: Path | None, sample: int, backend: str, json_path: Path | None,
         quiet: bool) -> None:
    """The quality gate: its statistics over real crops and what it does with degraded ones."""
    from . import gate_bench

    ctx = click.get_current_context()
    eye_state = _eye_state(model, backend)
    result = gate_bench.run(eye_state, sources, sample=sample, progress=_say(quiet))
    for source, counts in result["refused_real"].items():
        total = sum(counts.values())
        refused = {k: v for k, v in counts.items() if k != "passed"}
        click.echo(f"{source}: {total} real crops, refused {total - counts.get('passed', 0)} "
                   f"({100 * (total - counts.get('passed', 0)) / total:.2f} %) {refused}")
    click.echo(f"{'degradation':<16} {'accuracy':>8} {'refused':>8} {'acc. passed':>11}")
    for name, d in result["degraded"].items():
        passed = "-" if d["accuracy_of_passed"] is None else f"{d['accuracy_of_passed']:.3f}"
        click.echo(f"{name:<16} {d['accuracy']:8.3f} {d['refused']:8.3f} {passed:>11}")
    _write(json_path, _document("gate", ctx, eye_state, data={"sources": [str(s) for s in sources],
                                                              "licences": LICENCES}, **result))


@stream.command("crop-scale", context_settings=options.CONTEXT)
@click.option("--data", "sources", multiple=True, required=True, type=click.Path(exists=True, path_type=Path))
@options.model
@click.option("--subjects-from", metavar="FOLDS_JSON:FOLD", help="Only these subjects (e.g. the held-out fold).")
@click.option("--sample", type=click.IntRange(min=10), default=3000, show_default=True)
@_backend
@_locator_models
@options.json_out("the crop-scale document")
@options.quiet
def crop_scale(sources: tuple[Path, ...], model: Path | None, subjects_from: str | None, sample: int, backend: str,
               locator_models: Path | None, json_path: Path | None, quiet: bool) -> None:
    """The crop recipe's scale: how training crops are framed, and the classifier's accuracy per scale."""
    from ..data import parse_subjects_from, subjects_of_folds
    from . import crop_scale as bench

    ctx = click.get_current_context()
    eye_state = _eye_state(model, backend)
    subjects = None
    if subjects_from:
        path, folds = parse_subjects_from(subjects_from)
        subjects = subjects_of_folds(path, folds)
    result = bench.run(eye_state, bench.samples_of(sources, subjects, sample), progress=_say(quiet),
                       models=locator_models)
    click.echo(f"training-crop scale (side / iris-model eye width): {result['scale_of_training_crops']['all']}")
    click.echo(f"framing check (central 80 % must measure 0.8): {result['framing_check_ratio_of_80pct_crop']}")
    for key, by_scale in result["balanced_accuracy_by_scale"].items():
        click.echo(f"{key:<15} " + "  ".join(f"{s}: {v:.4f}" for s, v in by_scale.items()))
    _write(json_path, _document("crop-scale", ctx, eye_state, data={"sources": [str(s) for s in sources],
                                                                    "licences": LICENCES}, **result))


@stream.command(context_settings=options.CONTEXT)
@_locator_models
@options.json_out("the locators document")
@options.quiet
def locators(locator_models: Path | None, json_path: Path | None, quiet: bool) -> None:
    """Detection rate and eye-centre error on astronaut.png and scikit-image's LFW subset."""
    from . import locators_bench

    ctx = click.get_current_context()
    result = locators_bench.run(locator_models, progress=_say(quiet))
    for name, r in result["astronaut"].items():
        click.echo(f"astronaut {name}: both eyes in {r['both_eyes_found']}/{r['frames']} frames, mean error "
                   f"{r['mean_error_in_eye_widths']:.3f} eye widths (max {r['max_error_in_eye_widths']:.3f})")
    for name, r in result["lfw_subset"].items():
        click.echo(f"lfw subset {name}: faces {r['faces_found']}/{r['faces']}, non-faces {r['non_faces_found']}/"
                   f"{r['non_faces']}")
    click.echo(f"haar face geometry fitted: {result['haar_geometry_fitted']}")
    _write(json_path, _document("locators", ctx, None, **result))


def _face_frame(frame_path: Path | None) -> Any:
    import numpy as np

    if frame_path is not None:
        from eyesdk.imagefile import read_image

        image = read_image(frame_path)
        return np.ascontiguousarray(image[:, :, ::-1]) if image.ndim == 3 else image
    from .locators_bench import astronaut_bgr

    frame = np.full((480, 640, 3), 40, np.uint8)
    frame[:, 64:576] = astronaut_bgr()[16:496]
    return frame


@stream.command(context_settings=options.CONTEXT)
@click.option("--frame", "frame_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A frame with a face (default: astronaut.png in a 640 x 480 frame).")
@click.option("--calls", type=click.IntRange(min=10), default=2000, show_default=True)
@options.model
@_backend
@_locator_models
@options.json_out("the speed document")
@options.quiet
def speed(frame_path: Path | None, calls: int, model: Path | None, backend: str, locator_models: Path | None,
          json_path: Path | None, quiet: bool) -> None:
    """End-to-end frames/s of EyeStream.update at 640 x 480, one thread, interleaved contestants."""
    import numpy as np

    from . import speed as bench

    ctx = click.get_current_context()
    eye_state = _eye_state(model, backend)
    frame = _face_frame(frame_path)
    from eyesdk.locators import MediaPipeLocator

    eyes = MediaPipeLocator(models=locator_models, tracking=False).locate(frame)
    from eyesdk.locators.crop import crop_eye

    crops = tuple(crop_eye(frame, e).pixels for e in eyes) if len(eyes) == 2 else (
        np.full((48, 48), 120, np.uint8),) * 2
    result = bench.run_speed(eye_state, frame, crops, calls, models=locator_models, progress=_say(quiet))
    click.echo(f"{'contestant':<32} {'p50 us':>8} {'p90 us':>8} {'frames/s':>9}")
    for name, r in result["contestants"].items():
        click.echo(f"{name:<32} {r['p50']:8.0f} {r['p90']:8.0f} {r['frames_per_second_p50']:9.0f}")
    click.echo(f"tracking re-detected {result['tracking_detector_runs']} times in {result['tracking_frames']} frames")
    _write(json_path, _document("speed", ctx, eye_state, **result))


@stream.command(context_settings=options.CONTEXT)
@click.option("--hours", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Stream time to run (30 fps).")
@options.model
@_backend
@options.json_out("the memory document")
@options.quiet
def memory(hours: float, model: Path | None, backend: str, json_path: Path | None, quiet: bool) -> None:
    """Memory over a long synthetic stream (RSS and traced Python allocations, sampled along the way)."""
    import numpy as np

    from eyesdk.converters.validate import synthetic_eye_images

    from . import speed as bench

    ctx = click.get_current_context()
    eye_state = _eye_state(model, backend)
    images, labels = synthetic_eye_images(64, seed=0)
    crops = {bool(state): [np.rint(im).astype(np.uint8) for im, y in zip(images, labels, strict=True) if y == state]
             for state in (0, 1)}
    result = bench.run_memory(eye_state, crops, hours=hours, progress=_say(quiet))
    click.echo(f"{result['frames']} frames, {result['events']} events; growth over the second half: RSS "
               f"{result['rss_growth_second_half_mb']} MB, traced {result['traced_growth_second_half_kb']:.1f} kB")
    _write(json_path, _document("memory", ctx, eye_state, **result))


@stream.command(context_settings=options.CONTEXT)
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A folder with .avi videos and .tag annotations (Eyeblink8 / Talking Face layout).")
@click.option("--locator", default="auto", show_default=True, type=click.Choice(["auto", "mediapipe", "haar"]))
@options.model
@_backend
@options.json_out("the eyeblink8 document")
@options.quiet
def eyeblink8(root: Path, locator: str, model: Path | None, backend: str, json_path: Path | None,
              quiet: bool) -> None:
    """Blink precision / recall / F1 on Eyeblink8-layout videos (temporal IoU >= 0.5)."""
    from eyesdk.stream import EyeStream

    from . import eyeblink8 as bench

    ctx = click.get_current_context()
    eye_state = _eye_state(model, backend)
    try:
        result = bench.run(EyeStream(locator=locator, eye_state=eye_state), root, progress=_say(quiet))
    except (FileNotFoundError, bench.TagFileError) as exc:
        raise click.ClickException(str(exc)) from exc
    for r in result["videos"]:
        click.echo(f"{Path(r['video']).name}: F1 {r['f1']:.3f} (P {r['precision']:.3f}, R {r['recall']:.3f}, "
                   f"{r['truth']} blinks)")
    p = result["pooled"]
    click.echo(f"pooled: F1 {p['f1']:.3f} (P {p['precision']:.3f}, R {p['recall']:.3f}, {p['truth']} blinks)")
    _write(json_path, _document("eyeblink8", ctx, eye_state, **result))


if __name__ == "__main__":  # pragma: no cover
    stream(sys.argv[1:])
