"""Pass/fail gates on a bench document, so CI (or a device lab) can fail a build on a regression by exit status.

Parity is always a gate: an artifact whose logits on the bundle's probe leave its tolerance on this device would be
refused by the runtime, so a "green" benchmark of it would be a lie. The other gates are opt-in limits:
``max_drift_pp`` on |Δaccuracy| against the fp32 reference (absolute, like the exporter's drift gate: a quantized
copy that is *better* on one set is still a different model), ``max_ece`` on each artifact's calibration error, and
``max_p50_us`` on the batch-1 median latency of the public ``predict`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXIT_GATES_FAILED = 3


@dataclass(frozen=True)
class Gates:
    max_drift_pp: float | None = None
    max_ece: float | None = None
    max_p50_us: float | None = None

    @property
    def needs_data(self) -> list[str]:
        """The options given that can only be judged on labelled data."""
        return [name for name, value in (("--max-drift", self.max_drift_pp), ("--max-ece", self.max_ece))
                if value is not None]


def artifact_name(result: dict[str, Any]) -> str:
    """How a result entry is named in tables, plots and gate messages: ``onnxruntime int8`` (``t2``: 2 threads)."""
    if "backend" not in result:  # a peer entry
        return str(result["name"])
    suffix = f" t{result['threads']}" if result.get("threads", 1) != 1 else ""
    return f"{result['backend']} {result['precision']}{suffix}"


def _failure(result: dict[str, Any], gate: str, value: float | None, limit: float | None, message: str
             ) -> dict[str, Any]:
    return {"artifact": artifact_name(result), "gate": gate, "value": value, "limit": limit,
            "message": f"{artifact_name(result)} ({result['file']}): {message}"}


def check_gates(document: dict[str, Any], gates: Gates) -> dict[str, Any]:
    """The ``gates`` block: the limits, every failure (artifact, gate, value, limit, message) and ``ok``."""
    failures = []
    for result in document["results"]:
        par = result["parity"]
        if par["ok"] is False:
            diff = par["max_abs_diff"]
            shown = f"{diff:.3g}" if diff is not None else "non-finite or mis-shaped logits"
            failures.append(_failure(result, "parity", diff, par["tolerance"],
                                     f"parity failed: max |Δlogit| on the probe {shown} > tolerance "
                                     f"{par['tolerance']:.3g}"))
        drift = result.get("drift")
        if gates.max_drift_pp is not None and drift and drift.get("acc_pp") is not None:
            value = drift["acc_pp"]
            if abs(value) > gates.max_drift_pp:
                failures.append(_failure(result, "max_drift", value, gates.max_drift_pp,
                                         f"accuracy drift {value:+.3f} pp vs {drift['reference']} exceeds "
                                         f"--max-drift {gates.max_drift_pp:g} pp"))
        calibration = result.get("calibration")
        if gates.max_ece is not None and calibration and calibration.get("ece") is not None:
            value = calibration["ece"]
            if value > gates.max_ece:
                failures.append(_failure(result, "max_ece", value, gates.max_ece,
                                         f"ECE {value:.4f} exceeds --max-ece {gates.max_ece:g}"))
        lat = result.get("latency_us")
        if gates.max_p50_us is not None:
            p50 = lat["p50"] if lat else None
            if p50 is None:
                failures.append(_failure(result, "max_p50_us", None, gates.max_p50_us,
                                         f"no latency measured ({result.get('error') or 'not run'}), "
                                         f"so --max-p50-us {gates.max_p50_us:g} cannot pass"))
            elif p50 > gates.max_p50_us:
                failures.append(_failure(result, "max_p50_us", p50, gates.max_p50_us,
                                         f"p50 latency {p50:.1f} µs exceeds --max-p50-us {gates.max_p50_us:g} µs"))
    return {
        "max_drift_pp": gates.max_drift_pp,
        "max_ece": gates.max_ece,
        "max_p50_us": gates.max_p50_us,
        "ok": not failures,
        "failures": failures,
    }
