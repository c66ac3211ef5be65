"""Per-frame logit noise of real crops, the measurement the temporal filter was designed from.

For each subject and eye state, over its crops in image-id (video) order, measured through the stream's own gate and
classifier: the level (median calibrated logit), spread, tails, lag-1 autocorrelation of the residuals (do errors come
alone or in runs?), the runs of frames on the wrong side of the bundle's threshold, and how deep the wrong frames go
in the person's own units (+1 their open median, -1 their closed median), which is what the hysteresis
(``enter_closed``) and the confirmation depth (``confirm_depth``) are set against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _runs(wrong: np.ndarray) -> dict[str, int]:
    counts: dict[int, int] = {}
    n = 0
    for w in [*wrong.tolist(), False]:
        if w:
            n += 1
        elif n:
            counts[n] = counts.get(n, 0) + 1
            n = 0
    return {str(k): counts[k] for k in sorted(counts)}


def state_stats(z: np.ndarray, is_open: bool, levels: tuple[float, float], enter: float, confirm: float) -> dict:
    z = z[np.isfinite(z)]
    if len(z) < 3:
        return {"n": len(z)}
    residual = z - z.mean()
    lag1 = float(np.corrcoef(residual[:-1], residual[1:])[0, 1]) if residual.std() > 0 else 0.0
    wrong = z < 0 if is_open else z >= 0
    open_level, closed_level = levels
    mid, half = 0.5 * (open_level + closed_level), 0.5 * (open_level - closed_level)
    score = (z - mid) / half
    out = {
        "n": len(z),
        "median": float(np.median(z)),
        "sd": float(z.std()),
        "p5": float(np.percentile(z, 5)),
        "p95": float(np.percentile(z, 95)),
        "lag1_autocorrelation": lag1,
        "wrong_side_of_threshold": float(wrong.mean()),
        "wrong_runs": _runs(wrong),
    }
    if is_open:
        out["below_enter"] = float((score < enter).mean())
        out["below_confirm"] = float((score < -confirm).mean())
    return out


def run(measured: dict[str, Any], subjects: Sequence[str]) -> dict[str, Any]:
    """``measured``: subject -> events_bench.Measured (logits per crop, id order)."""
    from eyesdk.stream import EventConfig, FilterConfig

    enter, confirm = FilterConfig().enter_closed, EventConfig().confirm_depth
    out = {}
    for subject in subjects:
        m = measured[subject]
        o, c = m.open[np.isfinite(m.open)], m.closed[np.isfinite(m.closed)]
        levels = (float(np.median(o)) if len(o) else 5.5, float(np.median(c)) if len(c) else -5.5)
        out[subject] = {"open": state_stats(m.open, True, levels, enter, confirm),
                        "closed": state_stats(m.closed, False, levels, enter, confirm)}
    return {"thresholds": {"enter_closed": enter, "confirm_depth": confirm}, "subjects": out}
