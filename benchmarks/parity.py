"""Device parity: does this device reproduce the logits the bundle's builder recorded, within the artifact's tolerance?

Needs no data: every bundle carries ``probe.npy`` and each artifact's ``reference_logits`` on it. A runtime that
silently changes the numbers here (bf16 on AMX, f16 on ARM, a broken int8 kernel) shows up as ``ok: false`` before
any accuracy is measured. The check mirrors ``eyesdk.selection.parity_error`` (same default tolerance) but keeps the
number instead of only a verdict, because a benchmark reports *how far* off, not just whether the runtime refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

DEFAULT_TOLERANCE = 1e-3  # what eyesdk.selection.parity_error assumes when an artifact states none


def probe_parity(
    run: Callable[[np.ndarray], np.ndarray], artifact: Mapping[str, Any], probe: np.ndarray | None
) -> dict[str, Any]:
    """``{max_abs_diff, tolerance, ok}`` of ``run(probe)`` against ``artifact["reference_logits"]``.

    All three are None when the bundle has no probe or the artifact no reference (nothing to compare); a shape
    mismatch or a non-finite logit is ``ok: false`` with ``max_abs_diff`` None.
    """
    reference = artifact.get("reference_logits")
    if probe is None or not reference:
        return {"max_abs_diff": None, "tolerance": None, "ok": None}
    tolerance = float(artifact.get("tolerance", DEFAULT_TOLERANCE))
    expected = np.asarray(reference, dtype=np.float64).reshape(-1)
    got = np.asarray(run(probe), dtype=np.float64).reshape(-1)
    if got.shape != expected.shape or not np.isfinite(got).all():
        return {"max_abs_diff": None, "tolerance": tolerance, "ok": False}
    diff = float(np.max(np.abs(got - expected)))
    return {"max_abs_diff": diff, "tolerance": tolerance, "ok": bool(math.isfinite(diff) and diff <= tolerance)}
