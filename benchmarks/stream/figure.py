"""The timeline figure of docs/stream.md, drawn as a self-contained SVG (no plotting library).

Top to bottom, on one time axis: the scripted closures (ground truth), the fused score in the person's units with the
hysteresis and confirmation thresholds, the closures the stream reported (coloured by kind), alarms, and PERCLOS.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

KIND_COLORS = {"blink": "#4c9be8", "long_blink": "#8e6bd8", "microsleep": "#f39c34", "sleep": "#e4572e"}


def _polyline(points, colour: str, stroke: float) -> str:
    """An SVG path through (x, y) points; a None y lifts the pen."""
    path, pen = [], "M"
    for px, py in points:
        if py is None:
            pen = "M"
            continue
        path.append(f"{pen}{px:.1f},{py:.1f}")
        pen = "L"
    return f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="{stroke}"/>'


def _bars(intervals, x, y: float, h: float, t0: float, t1: float) -> list[str]:
    """One coloured bar per (start, end, kind) that overlaps [t0, t1]."""
    return [f'<rect x="{x(a):.1f}" y="{y}" width="{max(x(b) - x(a), 1):.1f}" height="{h}" '
            f'fill="{KIND_COLORS.get(kind, "#888")}"/>' for a, b, kind in intervals if b > t0 and a < t1]


def timeline_svg(
    title: str,
    t0: float,
    t1: float,
    truth: Sequence[tuple[float, float, str]],
    trace: Sequence[tuple[float, float | None, float | None]],
    events: Sequence[tuple[float, float, str]],
    alarms: Sequence[tuple[float, str]],
    thresholds: dict[str, float],
    width: int = 1000,
) -> str:
    """trace: (t, fused score or None, PERCLOS or None) per update inside [t0, t1]."""
    left, right = 90, 20
    rows = {"truth": (40, 22), "score": (80, 150), "found": (250, 22), "alarms": (285, 18), "perclos": (320, 70)}
    height = 420
    span = t1 - t0

    def x(t: float) -> float:
        return left + (min(max(t, t0), t1) - t0) / span * (width - left - right)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    for name, (y, h) in rows.items():
        label = {"truth": "script", "score": "fused score", "found": "reported", "alarms": "alarms",
                 "perclos": "PERCLOS"}[name]
        out.append(f'<text x="{left - 8}" y="{y + h / 2 + 4}" text-anchor="end">{label}</text>')
    out += _bars(truth, x, *rows["truth"], t0, t1)
    y, h = rows["score"]
    lo, hi = -2.0, 2.0

    def sy(v: float) -> float:
        return y + (hi - min(max(v, lo), hi)) / (hi - lo) * h

    for name, value in thresholds.items():
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(value):.1f}" y2="{sy(value):.1f}" '
                   f'stroke="#bbb" stroke-dasharray="4 3"/><text x="{width - right}" y="{sy(value) - 3:.1f}" '
                   f'text-anchor="end" fill="#888" font-size="10">{escape(name)} {value:+g}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#999"/>')
    out.append(_polyline([(x(t), None if score is None else sy(score)) for t, score, _ in trace], "#333", 1))
    for v in (lo, hi):
        out.append(f'<text x="{left - 8}" y="{sy(v) + 4:.1f}" text-anchor="end" fill="#888" font-size="10">'
                   f'{v:+g}</text>')
    out += _bars(events, x, *rows["found"], t0, t1)
    y, h = rows["alarms"]
    for t, kind in alarms:
        if t0 <= t <= t1:
            out.append(f'<path d="M{x(t):.1f},{y} l-5,{h} l10,0 z" fill="#e4572e"/>'
                       f'<text x="{x(t) + 7:.1f}" y="{y + h - 3}" font-size="10">{escape(kind)}</text>')
    y, h = rows["perclos"]
    values = [p for _, _, p in trace if p is not None]
    top = max(0.2, max(values) if values else 0.2)
    out.append(_polyline([(x(t), None if p is None else y + h - p / top * h) for t, _, p in trace], "#e4572e", 1.5))
    out.append(f'<text x="{left + 4}" y="{y + 10}" fill="#888" font-size="10">{100 * top:.0f} %</text>'
               f'<line x1="{left}" x2="{width - right}" y1="{y + h}" y2="{y + h}" stroke="#ccc"/>')
    axis = height - 18
    step = 5.0 if span <= 60 else 10.0 if span <= 180 else 30.0
    t = t0 - (t0 % step) + (step if t0 % step else 0)
    while t <= t1:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis - 6}" y2="{axis}" stroke="#666"/>'
                   f'<text x="{x(t):.1f}" y="{axis + 12}" text-anchor="middle" font-size="10">{t:g} s</text>')
        t += step
    legend = " ".join(f'<tspan fill="{c}">&#9632; {k}</tspan>' for k, c in KIND_COLORS.items())
    out.append(f'<text x="{width - right}" y="20" text-anchor="end">{legend}</text></svg>')
    return "\n".join(out)
