"""``eyesdk watch --video FILE | --camera N``: events, alarms and a periodic summary from a video or a camera.

Lines on stdout as things happen: each completed event, each alarm when raised, a summary every ``--summary-every``
seconds of stream time and one at the end (``--json``: one JSON object per line with a ``type`` of event, alarm,
summary or end). A progress bar for files on stderr. ``--annotate OUT.mp4`` writes the frames with eye boxes and
states drawn on. Ctrl-C and SIGTERM stop cleanly: the closure in progress is completed, the annotated video is
finished, the source released. Exit status: 0 the video ended (or SIGTERM), 130 Ctrl-C, 1 the source failed.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from ..errors import EyeSDKError
from ..formats import BACKENDS, PRECISIONS

LOCATOR_CHOICES = ("auto", "mediapipe", "haar", "fixed")


def _regions(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dict[str, tuple[float, ...]] | None:
    """``left=x,y,w,h;right=x,y,w,h`` -> {"left": (x, y, w, h), ...}"""
    if value is None:
        return None
    out = {}
    try:
        for part in value.split(";"):
            if part.strip():
                side, numbers = part.split("=")
                box = tuple(float(v) for v in numbers.split(","))
                if len(box) != 4:
                    raise ValueError
                out[side.strip()] = box
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected e.g. 'left=100,80,60,60;right=220,80,60,60'") from None
    if not out:
        raise click.BadParameter("no region given")
    return out


class _Stop:
    """SIGTERM (systemctl stop, docker stop) ends the loop like the end of a file; Ctrl-C like an interruption."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous = None

    def __enter__(self) -> _Stop:
        def on_term(_signum: int, _frame: Any) -> None:
            self.reason = "terminated"

        try:
            self._previous = signal.signal(signal.SIGTERM, on_term)
        except ValueError:  # not the main thread: no handler, Ctrl-C still works
            self._previous = None
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _config(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """``--config``: a JSON object {section: {field: value}} (or a file holding one) -> a validated StreamConfig."""
    if value is None:
        return None
    from ..safeio import RefusedFileError, parse_json, read_regular
    from .stream import stream_config_of

    inline = value.lstrip().startswith("{")
    try:
        sections = parse_json(value.encode() if inline else read_regular(Path(value), 1 << 20))
    except (RefusedFileError, OSError) as exc:
        raise click.BadParameter(f"{'the value' if inline else value} {exc}") from None
    try:
        return stream_config_of(sections)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc)) from None


def _emit(as_json: bool, record: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(record) if as_json else text)


def _summary(update: Any, frames: int, started: float, counts: Counter) -> tuple[dict[str, Any], str]:
    elapsed = time.perf_counter() - started
    record = {
        "type": "summary",
        "timestamp": round(update.timestamp, 3),
        "state": update.state,
        "perclos": None if update.perclos is None else round(update.perclos, 4),
        "blinks_per_minute": None if update.blinks_per_minute is None else round(update.blinks_per_minute, 2),
        "alarms": [a.kind for a in update.alarms],
        "events": dict(counts),
        "frames": frames,
        "frames_per_second": round(frames / elapsed, 1) if elapsed > 0 else None,
    }
    perclos = "-" if update.perclos is None else f"{100 * update.perclos:.1f}%"
    bpm = "-" if update.blinks_per_minute is None else f"{update.blinks_per_minute:.1f}"
    text = (f"{update.timestamp:9.2f}s  summary  state {update.state}, PERCLOS {perclos}, blinks/min {bpm}, "
            f"events {dict(counts) or '{}'}, {record['frames_per_second']} frames/s")
    return record, text


@click.command()
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), help="A video file.")
@click.option("--camera", type=click.IntRange(min=0), help="A camera index (OpenCV / V4L2).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--annotate", type=click.Path(dir_okay=False, path_type=Path), metavar="OUT.mp4",
              help="Also write the frames with eye boxes and states drawn on.")
@click.option("--locator", type=click.Choice(LOCATOR_CHOICES), default="auto", show_default=True)
@click.option("--regions", callback=_regions, metavar="left=x,y,w,h;right=x,y,w,h",
              help="Eye crop boxes for --locator fixed (frame pixels).")
@click.option("--model", type=click.Path(file_okay=False, path_type=Path), help="Bundle directory.")
@click.option("--backend", type=click.Choice(["auto", *BACKENDS]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", *PRECISIONS]), default="auto", show_default=True)
@click.option("--summary-every", type=click.FloatRange(min=0.0, min_open=True), default=10.0, show_default=True,
              metavar="SECONDS", help="Stream seconds between summaries.")
@click.option("--max-seconds", type=click.FloatRange(min=0.0, min_open=True), metavar="SECONDS",
              help="Stop after this much stream time.")
@click.option("--config", callback=_config, metavar="JSON|FILE",
              help='Stream settings that differ from the defaults, as {section: {field: value}}, e.g. '
                   '\'{"events": {"microsleep_from": 0.8}}\' (sections: events, filter, adaptation, quality, window, '
                   'winks, crop; docs/stream.md).')
@click.option("--quiet", is_flag=True, help="No progress bar.")
def watch(video: Path | None, camera: int | None, as_json: bool, annotate: Path | None, locator: str,
          regions: dict | None, model: Path | None, backend: str, precision: str, summary_every: float,
          max_seconds: float | None, config: Any, quiet: bool) -> None:
    """Blinks, PERCLOS and drowsiness alarms from a video file or a camera."""
    from ..progress import Progress
    from .errors import VideoSourceError
    from .stream import EyeStream
    from .video import AnnotatedWriter, VideoSource

    if (video is None) == (camera is None):
        raise click.UsageError("give exactly one of --video FILE or --camera N")
    if (locator == "fixed") != (regions is not None):
        raise click.UsageError("--locator fixed needs --regions, and --regions needs --locator fixed")
    try:
        if locator == "fixed":
            from ..locators import FixedRegionLocator

            chosen: Any = FixedRegionLocator(regions)
        else:
            chosen = locator
        stream = EyeStream(locator=chosen, model=model, backend=backend, precision=precision, config=config)
        source = VideoSource.file(video) if video is not None else VideoSource.camera(camera)
    except (EyeSDKError, OSError, ValueError, ImportError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    writer = AnnotatedWriter(annotate, source.fps) if annotate is not None else None
    counts: Counter = Counter()
    frames, reason, status, update = 0, "end of video", 0, None
    started = time.perf_counter()
    next_summary = None
    bar = Progress(source.frame_count, f"watch {source.name}", enabled=not quiet and not source.live, unit="frame")
    try:
        with _Stop() as stop, source:
            first = None
            for t, frame in source:
                first = t if first is None else first
                update = stream.update(frame, t)
                frames += 1
                bar.step()
                if writer is not None:
                    writer.write(frame, update)
                for event in update.events:
                    counts[event.kind] += 1
                    _emit(as_json, {"type": "event", **event.to_dict()},
                          f"{event.start:9.2f}s  {event.kind:<10} {event.duration:.3f}s"
                          + (f" ({event.side})" if event.side else "") + (" clipped" if event.clipped else ""))
                for alarm in update.alarms:
                    if alarm.new:
                        _emit(as_json, {"type": "alarm", "timestamp": round(t, 3), **alarm.to_dict()},
                              f"{t:9.2f}s  ALARM {alarm.kind} (since {alarm.since:.2f}s)")
                next_summary = t + summary_every if next_summary is None else next_summary
                if t >= next_summary:
                    _emit(as_json, *_summary(update, frames, started, counts))
                    next_summary += summary_every * max(1, int((t - next_summary) // summary_every) + 1)
                if stop.reason is not None:
                    reason = stop.reason
                    break
                if max_seconds is not None and t - first >= max_seconds:
                    reason = "max seconds"
                    break
    except KeyboardInterrupt:
        reason, status = "interrupted", 130
    except VideoSourceError as exc:
        reason, status = f"video error: {exc}", 1
    except EyeSDKError as exc:
        reason, status = f"{type(exc).__name__}: {exc}", 1
    finally:
        bar.close()
    for event in stream.close():
        counts[event.kind] += 1
        _emit(as_json, {"type": "event", **event.to_dict()},
              f"{event.start:9.2f}s  {event.kind:<10} {event.duration:.3f}s clipped")
    written = writer.close() if writer is not None else None
    if video is not None and source.frame_count and frames < source.frame_count and reason == "end of video":
        reason = f"end of video after {frames} of {source.frame_count} frames (truncated or corrupt)"
    end = {"type": "end", "reason": reason, "frames": frames, "events": dict(counts),
           "retimed_frames": source.retimed, "annotated": str(written) if written else None}
    if update is not None:
        end["summary"] = _summary(update, frames, started, counts)[0]
    _emit(as_json, end, f"end: {reason}; {frames} frames, events {dict(counts) or '{}'}"
          + (f", annotated video {written}" if written else ""))
    if status:
        sys.exit(status)
