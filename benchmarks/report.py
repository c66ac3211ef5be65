"""Render a bench document: console tables, Markdown, and one self-contained HTML page with inline SVG plots.

Everything is drawn from the JSON document alone, so a report can be rebuilt from a ``--json`` file of another
device. The HTML page has no script, no stylesheet link and no web font: it must open on an air-gapped device lab
machine or as a CI artifact exactly as it opened where it was made.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eyesdk.atomic import atomic_write_text
from eyesdk.formats import FORMATS

from .gates import artifact_name
from .schema import dumps, write_json

Row = dict[str, Any]
Column = tuple[str, Callable[[Row], str]]

_RUNTIME_DISTRIBUTIONS = frozenset(d for fmt in FORMATS.values() for d in fmt.distributions)
_COLORS = {"closed": "#3b6fb6", "open": "#e08a1e", "bar": "#4f8f5b", "peer": "#9b59b6", "grid": "#d8d8d8"}


# ------------------------------------------------------------------------------------------------ formatting


def _num(value: Any, fmt: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, fmt)


def _get(row: Row, *path: str) -> Any:
    node: Any = row
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    return node


def _parity(row: Row) -> str:
    par = row.get("parity")
    if not par or par.get("ok") is None:
        return "-"
    diff = _num(par.get("max_abs_diff"), ".1e")
    return f"ok {diff}" if par["ok"] else f"FAIL {diff}"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _peer_rows(document: dict[str, Any]) -> list[Row]:
    """Each peer as two speed rows: what a user of the peer pays per crop, and its bare session.run."""
    rows = []
    for peer in document.get("peers", []):
        fastest = _get(peer, "ratios", "ours_fastest_p50_vs_peer")
        full = {**peer, "_label": f"peer {peer['name']}", "_vs_fastest": None}
        bare = {**peer, "_label": f"peer {peer['name']} session.run only", "latency_us": peer.get("latency_run_us"),
                "cold_start_ms": None, "_vs_fastest": None}
        if fastest:
            full["_vs_fastest"] = 1.0 / fastest
        rows += [full, bare]
    return rows


def _label(row: Row) -> str:
    return row.get("_label") or artifact_name(row)


SPEED_COLUMNS: list[Column] = [
    ("artifact", _label),
    ("parity", _parity),
    ("cold ms", lambda r: _num(r.get("cold_start_ms"), ".1f")),
    ("p50 µs", lambda r: _num(_get(r, "latency_us", "p50"), ".1f")),
    ("p90 µs", lambda r: _num(_get(r, "latency_us", "p90"), ".1f")),
    ("p99 µs", lambda r: _num(_get(r, "latency_us", "p99"), ".1f")),
    ("mean µs", lambda r: _num(_get(r, "latency_us", "mean"), ".1f")),
    ("x fastest", lambda r: _ratio(r.get("_vs_fastest", _get(r, "ratios", "p50_vs_fastest")))),
    ("x peer", lambda r: _ratio(_get(r, "ratios", "p50_vs_peer"))),
    ("x peer run", lambda r: _ratio(_get(r, "ratios", "p50_vs_peer_run"))),
    ("b1 /s", lambda r: _num(_get(r, "throughput_per_s", "1"), ",.0f")),
    ("b8 /s", lambda r: _num(_get(r, "throughput_per_s", "8"), ",.0f")),
    ("b64 /s", lambda r: _num(_get(r, "throughput_per_s", "64"), ",.0f")),
]

QUALITY_COLUMNS: list[Column] = [
    ("artifact", _label),
    ("acc", lambda r: _num(_get(r, "accuracy", "acc"))),
    ("bacc", lambda r: _num(_get(r, "accuracy", "bacc"))),
    ("f1", lambda r: _num(_get(r, "accuracy", "f1"))),
    ("auc", lambda r: _num(_get(r, "accuracy", "auc"))),
    ("Δacc pp", lambda r: _num(_get(r, "drift", "acc_pp"), "+.2f")),
    ("ΔF1 pp", lambda r: _num(_get(r, "drift", "f1_pp"), "+.2f")),
    ("flips %", lambda r: _num(None if _get(r, "drift", "flip_rate") is None else 100 * r["drift"]["flip_rate"],
                               ".2f")),
    ("|Δp|", lambda r: _num(_get(r, "drift", "mean_abs_dprob"), ".1e")),
    ("ECE", lambda r: _num(_get(r, "calibration", "ece"))),
    ("MCE", lambda r: _num(_get(r, "calibration", "mce"))),
    ("Brier", lambda r: _num(_get(r, "calibration", "brier"))),
    ("NLL", lambda r: _num(_get(r, "calibration", "nll"))),
    ("KS", lambda r: _num(_get(r, "separation", "ks"))),
    ("Fisher", lambda r: _num(_get(r, "separation", "fisher"), ".2f")),
]


def _cells(rows: Sequence[Row], columns: Sequence[Column]) -> list[list[str]]:
    return [[fn(row) for _, fn in columns] for row in rows]


def _text_table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    headers = [name for name, _ in columns]
    body = _cells(rows, columns)
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in body)])


def _md_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in
                                                                  range(len(headers))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines)


def _html_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _speed_rows(document: dict[str, Any]) -> list[Row]:
    return [*document["results"], *_peer_rows(document)]


def _quality_rows(document: dict[str, Any]) -> list[Row]:
    return [*document["results"], *({**p, "_label": f"peer {p['name']}"} for p in document.get("peers", []))]


def breakdown_table(document: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Slices x artifacts accuracy: where a quantized copy (or the peer) loses, e.g. glasses or one sensor."""
    entries = [r for r in _quality_rows(document) if r.get("breakdown")]
    if not entries:
        return [], []
    names = [r["slice"] for r in entries[0]["breakdown"]]
    headers = ["slice", "n", "open", *(_label(e) for e in entries)]
    body = []
    for name in names:
        first = next(row for row in entries[0]["breakdown"] if row["slice"] == name)
        cells = [name, str(first["n"]), str(first["n_open"])]
        for entry in entries:
            row = next((r for r in entry["breakdown"] if r["slice"] == name), None)
            cells.append(_num(row["acc"]) if row else "-")
        body.append(cells)
    return headers, body


def _errors(document: dict[str, Any]) -> list[str]:
    peers = [{**p, "_label": f"peer {p['name']}"} for p in document.get("peers", [])]
    return [f"{_label(r)}: {r['error']}" for r in [*document["results"], *peers] if r.get("error")]


def _header_lines(document: dict[str, Any]) -> list[str]:
    device, model, settings = document["device"], document["model"], document["settings"]
    libs = device.get("libraries", {})
    runtimes = ", ".join(f"{k} {v}" for k, v in libs.items() if v and k in _RUNTIME_DISTRIBUTIONS)
    crop = settings["crop"]
    lines = [
        f"model: {model['name']} (manifest sha256 {model['manifest_sha256'][:16]}…, {model['path']})",
        f"device: {device['arch']} {device['system']} {device['os_release']}, {device['cpu_model']}, "
        f"{device['cpu_count']} CPUs; python {device['python']}; {runtimes}",
        f"latency: EyeState.predict on one decoded {crop['height']}x{crop['width']} uint8 crop ({crop['source']}), "
        f"{settings['runs']} calls in {settings['rounds']} interleaved rounds after {settings['warmup']} warm-up, "
        f"threads {','.join(map(str, settings['threads']))}" + (" [quick]" if settings["quick"] else ""),
    ]
    data = document.get("data")
    if data:
        where = f", subjects of {data['subjects_from']}" if data.get("subjects_from") else ""
        lines.append(f"data: {data['n']} crops ({data['n_open']} open, {data['n_closed']} closed) from "
                     f"{', '.join(data['sources'])}{where}" + (f"; {data['bad_files']} unreadable" if
                                                              data["bad_files"] else ""))
    return lines


def _gate_lines(document: dict[str, Any]) -> list[str]:
    gates = document.get("gates") or {}
    return [f"GATE FAILED {f['gate']}: {f['message']}" for f in gates.get("failures", [])]


# -------------------------------------------------------------------------------------------------- console


def text_report(document: dict[str, Any]) -> str:
    """The tables ``eyesdk-bench`` prints: speed (with ratios), then quality when there was data."""
    parts = ["\n".join(_header_lines(document)), "", "speed (absolute times are machine-specific; read the ratios)",
             _text_table(_speed_rows(document), SPEED_COLUMNS)]
    if document.get("data"):
        parts += ["", "quality (probabilities with each artifact's own temperature; drift vs the fp32 reference)",
                  _text_table(_quality_rows(document), QUALITY_COLUMNS)]
    errors = _errors(document)
    if errors:
        parts += ["", "not measured:", *(f"  {e}" for e in errors)]
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------- markdown


def markdown_report(document: dict[str, Any]) -> str:
    """A Markdown page for docs and pull requests: header, speed, quality and per-slice tables."""
    speed = _speed_rows(document)
    out = ["# eyesdk-bench report", "", *(f"- {line}" for line in _header_lines(document)),
           f"- command: `{document.get('command', '')}`", f"- schema: `{document['schema']}`, "
           f"created {document['created']}", "", "## Speed", "",
           "Absolute times are specific to this machine and its load; the ratio columns are what transfers.", "",
           _md_table([n for n, _ in SPEED_COLUMNS], _cells(speed, SPEED_COLUMNS))]
    if document.get("data"):
        quality = _quality_rows(document)
        out += ["", "## Quality", "",
                "P(open) = sigmoid(logit / T) with each artifact's own temperature; Δ columns are against the fp32 "
                "reference artifact (same backend when shipped).", "",
                _md_table([n for n, _ in QUALITY_COLUMNS], _cells(quality, QUALITY_COLUMNS))]
        headers, body = breakdown_table(document)
        if body:
            out += ["", "## Accuracy per slice", "", _md_table(headers, body)]
    errors, gates = _errors(document), _gate_lines(document)
    if errors:
        out += ["", "## Not measured", "", *(f"- {e}" for e in errors)]
    if gates:
        out += ["", "## Gate failures", "", *(f"- {g}" for g in gates)]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------- svg


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>{body}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11, extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>'
            f"{html.escape(text)}</text>")


def latency_svg(document: dict[str, Any]) -> str:
    """Horizontal bars of p50 per contestant with a p90-p99 line: the spread matters as much as the median.

    The axis ends a little past the largest p90, so one contestant's rare p99 stall (another process, a page fault)
    cannot squash every bar; a p99 beyond the axis is drawn to the edge and written out.
    """
    rows = [(r, _label(r), r.get("_label") is not None) for r in _speed_rows(document) if _get(r, "latency_us", "p50")]
    if not rows:
        return ""
    left, right, step, top = 330, 90, 22, 26
    width = 900
    top_value = max(max(r["latency_us"]["p90"] or 0.0, r["latency_us"]["p50"]) for r, _, _ in rows) * 1.25
    scale = (width - left - right) / top_value
    height = top + step * len(rows) + 32
    parts = []
    for tick in _ticks(top_value):
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 28}" stroke="{_COLORS["grid"]}"/>')
        parts.append(_text(x, height - 14, f"{tick:g}", "middle", 10))
    parts.append(_text(left + (width - left - right) / 2, 14, "µs per call (bar: p50; line: p90 to p99)", "middle", 12))
    for i, (row, name, is_peer) in enumerate(rows):
        y = top + i * step
        lat = row["latency_us"]
        color = _COLORS["peer"] if is_peer else _COLORS["bar"]
        parts.append(_text(left - 6, y + 13, name, "end"))
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{lat["p50"] * scale:.1f}" height="{step - 8}" '
                     f'fill="{color}"/>')
        p90, p99 = lat.get("p90"), lat.get("p99")
        if p90 and p99:
            end = min(p99, top_value)
            parts.append(f'<line x1="{left + p90 * scale:.1f}" y1="{y + step / 2}" x2="{left + end * scale:.1f}" '
                         f'y2="{y + step / 2}" stroke="#333" stroke-width="1.5"/>')
            if p99 > top_value:
                parts.append(_text(width - right + 4, y + 13, f"p99 {p99:,.0f}", size=9))
        parts.append(_text(left + lat["p50"] * scale + 4, y + 9, f"{lat['p50']:.1f}", size=9))
    return _svg(width, height, "".join(parts), "latency per artifact")


def _ticks(top: float, count: int = 5) -> list[float]:
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(top / step) + 1)]


_PANEL, _GAP, _COLS = 180, 56, 4


def _panel_origin(i: int, top: float) -> tuple[float, float]:
    return _GAP + (i % _COLS) * (_PANEL + _GAP), top + 30 + (i // _COLS) * (_PANEL + _GAP + 30)


def _panel_frame(x0: float, y0: float, title: str, subtitle: str, x_name: str, y_name: str) -> list[str]:
    size = _PANEL
    name = title if len(title) <= 36 else title[:35] + "…"
    parts = [f'<rect x="{x0}" y="{y0}" width="{size}" height="{size}" fill="none" stroke="#999"/>',
             _text(x0 + size / 2, y0 - 18, name, "middle", 11), _text(x0 + size / 2, y0 - 5, subtitle, "middle", 10),
             _text(x0 + size / 2, y0 + size + 24, x_name, "middle", 9),
             _text(x0 - 22, y0 + size / 2, y_name, "middle", 9,
                   f'transform="rotate(-90 {x0 - 22:.1f} {y0 + size / 2:.1f})"')]
    for v in (0.0, 0.5, 1.0):
        parts.append(_text(x0 + v * size, y0 + size + 12, f"{v:g}", "middle", 9))
    return parts


def _panels_size(count: int, top: float) -> tuple[int, int]:
    rows = math.ceil(count / _COLS)
    return _COLS * (_PANEL + _GAP) + _GAP, int(top + rows * (_PANEL + _GAP + 30) + 10)


def reliability_svg(entries: Sequence[Row]) -> str:
    """Small multiples: observed fraction open vs mean P(open) per bin; on the diagonal means calibrated.

    Shaded columns are the bins' observed fractions, the line joins (mean P(open), fraction open) per non-empty bin.
    """
    panels = [e for e in entries if _get(e, "plots", "reliability")]
    if not panels:
        return ""
    size = _PANEL
    width, height = _panels_size(len(panels), 0)
    parts = []
    for i, entry in enumerate(panels):
        x0, y0 = _panel_origin(i, 0)
        rel = entry["plots"]["reliability"]
        parts += _panel_frame(x0, y0, _label(entry), f"ECE {_num(_get(entry, 'calibration', 'ece'), '.3f')}",
                              "mean P(open)", "fraction open")
        parts.append(f'<line x1="{x0}" y1="{y0 + size}" x2="{x0 + size}" y2="{y0}" stroke="#aaa" '
                     f'stroke-dasharray="4 3"/>')
        edges = rel["edges"]
        points = []
        for j, (conf, freq) in enumerate(zip(rel["confidence"], rel["frequency"], strict=True)):
            if conf is None or freq is None:
                continue
            bx = x0 + edges[j] * size
            bw = (edges[j + 1] - edges[j]) * size
            parts.append(f'<rect x="{bx:.1f}" y="{y0 + (1 - freq) * size:.1f}" width="{bw:.1f}" '
                         f'height="{freq * size:.1f}" fill="{_COLORS["open"]}" fill-opacity="0.25"/>')
            points.append((x0 + conf * size, y0 + (1 - freq) * size))
        if points:
            joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{joined}" fill="none" stroke="{_COLORS["closed"]}" stroke-width="1.5"/>')
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{_COLORS["closed"]}"/>' for x, y in points]
    return _svg(width, height, "".join(parts), "reliability diagrams")


def histogram_svg(entries: Sequence[Row]) -> str:
    """Small multiples: share of each class per P(open) bin, on a square-root axis so thin tails stay visible."""
    panels = [e for e in entries if _get(e, "plots", "histogram")]
    if not panels:
        return ""
    size = _PANEL
    width, height = _panels_size(len(panels), 20)
    parts = [_text(_GAP, 14, "closed", size=11, extra=f'fill="{_COLORS["closed"]}"'),
             _text(_GAP + 50, 14, "open", size=11, extra=f'fill="{_COLORS["open"]}"'),
             _text(_GAP + 90, 14, "share of each class per P(open) bin (square-root axis)", size=11)]
    for i, entry in enumerate(panels):
        x0, y0 = _panel_origin(i, 20)
        hist = entry["plots"]["histogram"]
        parts += _panel_frame(x0, y0, _label(entry), f"KS {_num(_get(entry, 'separation', 'ks'), '.3f')}",
                              "P(open)", "sqrt(share)")
        edges = hist["edges"]
        for name in ("closed", "open"):
            counts = hist[name]
            total = sum(counts) or 1.0
            for j, count in enumerate(counts):
                share = math.sqrt(count / total)
                if share <= 0:
                    continue
                bx = x0 + edges[j] * size
                bw = (edges[j + 1] - edges[j]) * size
                parts.append(f'<rect x="{bx:.1f}" y="{y0 + (1 - share) * size:.1f}" width="{bw:.1f}" '
                             f'height="{share * size:.1f}" fill="{_COLORS[name]}" fill-opacity="0.45"/>')
    return _svg(width, height, "".join(parts), "score histograms per class")


# ------------------------------------------------------------------------------------------------------ html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead{background:#f3f3f3}
.fail{color:#b00020;font-weight:600}
code{background:#f4f4f4;padding:1px 4px}
svg{display:block;margin:8px 0 24px}
"""


def html_report(document: dict[str, Any]) -> str:
    """One self-contained page: inline CSS and SVG only, no script and no external reference of any kind."""
    speed = _speed_rows(document)
    quality = _quality_rows(document)
    body = [f"<h1>eyesdk-bench report: {html.escape(document['model']['name'])}</h1>", "<ul>"]
    body += [f"<li>{html.escape(line)}</li>" for line in _header_lines(document)]
    body += [f"<li>command: <code>{html.escape(document.get('command', ''))}</code></li>",
             f"<li>schema <code>{html.escape(document['schema'])}</code>, created "
             f"{html.escape(document['created'])}</li></ul>"]
    gates = _gate_lines(document)
    if gates:
        body += ["<h2>Gate failures</h2><ul>", *(f'<li class="fail">{html.escape(g)}</li>' for g in gates), "</ul>"]
    body += ["<h2>Speed</h2>", "<p>Absolute times are specific to this machine and its load; compare the ratios.</p>",
             _html_table([n for n, _ in SPEED_COLUMNS], _cells(speed, SPEED_COLUMNS)), latency_svg(document)]
    if document.get("data"):
        body += ["<h2>Quality</h2>",
                 "<p>P(open) = sigmoid(logit / T) with each artifact's own temperature; Δ columns against the fp32 "
                 "reference artifact.</p>",
                 _html_table([n for n, _ in QUALITY_COLUMNS], _cells(quality, QUALITY_COLUMNS)),
                 "<h3>Reliability diagrams</h3>", reliability_svg(quality),
                 "<h3>Score histograms per class</h3>", histogram_svg(quality)]
        headers, rows = breakdown_table(document)
        if rows:
            body += ["<h2>Accuracy per slice</h2>", _html_table(headers, rows)]
    errors = _errors(document)
    if errors:
        body += ["<h2>Not measured</h2><ul>", *(f"<li>{html.escape(e)}</li>" for e in errors), "</ul>"]
    title = html.escape(f"eyesdk-bench {document['model']['name']}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_report(document: dict[str, Any], directory: str | Path) -> list[Path]:
    """``report.md``, ``report.html`` and the document as ``bench.json`` in ``directory`` (created if needed).

    Both pages are rendered before anything is written, and each file is replaced atomically (``eyesdk.atomic``):
    a full disk or a crash mid-write leaves the previous report whole beside its ``bench.json``, never a torn page.
    """
    out = Path(directory)
    clean = json.loads(dumps(document))  # the report shows exactly what the JSON holds
    pages = {out / "report.md": markdown_report(clean), out / "report.html": html_report(clean)}
    paths = [atomic_write_text(path, text) for path, text in pages.items()]
    paths.append(write_json(out / "bench.json", clean))
    return paths
