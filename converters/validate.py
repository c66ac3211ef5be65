"""Validate an exported artifact against the PyTorch fp32 model before it may enter a bundle.

For every artifact, on the labelled validation crops: logit parity (max / mean |Δlogit|, decision agreement),
accuracy drift (Δacc and ΔF1 in percentage points, flip rate, mean |Δprob|, via ``eyesdk.metrics.drift_report``),
and a temperature fitted to the artifact's own logits with the ECE before and after it. Two gates decide:

* drift: |Δacc| <= ``GATES[precision].drift_pp`` (``eyesdk.formats``: 0.05 pp for fp32 / fp16, 0.5 pp for int8);
* parity (sanity): max |Δlogit| <= ``GATES[precision].parity`` x max(1, std of the reference logits). It catches a
  broken conversion (wrong layout, clipped ranges) even where the validation set is too easy to show it in
  accuracy; it is deliberately loose for int8, where the drift gate is the one that judges.

Each artifact also gets ``reference_logits`` on a fixed synthetic probe set and a ``tolerance`` for reproducing
them on another device (see :func:`reproduction_tolerance`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eyesdk.formats import GATES, PRECISIONS
from eyesdk.metrics import drift_report, expected_calibration_error, fit_temperature, predict_open, sigmoid
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, preprocess_grey

from .export import THRESHOLD

if TYPE_CHECKING:
    from torch import nn

#: Reproduction tolerance on another device: the largest of a floor (absolute + relative to the largest |reference
#: logit|), a multiple of the measured difference between two kernel implementations of the file, and a multiple of
#: the artifact's own distance from PyTorch on the probe. See :func:`reproduction_tolerance`.
TOLERANCE_FLOOR: dict[str, float] = {"fp32": 1e-3, "fp16": 1e-2, "int8": 5e-2}
TOLERANCE_RELATIVE: dict[str, float] = {"fp32": 1e-4, "fp16": 2e-3, "int8": 0.0}
TOLERANCE_KERNEL_FACTOR = 3.0
TOLERANCE_ERROR_FACTOR: dict[str, float] = {"fp32": 2.0, "fp16": 2.0, "int8": 0.5}
PROBE_COUNT = 64


@dataclass(frozen=True)
class Gates:
    """Acceptance thresholds per precision; override any entry, e.g. ``Gates(drift_pp={"int8": 1.0})``."""

    drift_pp: Mapping[str, float] = field(default_factory=dict)
    parity: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("drift_pp", "parity"):
            given = dict(getattr(self, name))
            unknown = sorted(set(given) - set(PRECISIONS))
            if unknown:
                raise ValueError(f"Gates.{name} has unknown precision(s) {unknown}; known: {', '.join(PRECISIONS)}")
            bad = {k: v for k, v in given.items() if not (isinstance(v, (int, float)) and v >= 0)}
            if bad:
                raise ValueError(f"Gates.{name} values must be numbers >= 0; got {bad}")
            defaults = {precision: getattr(gates, name) for precision, gates in GATES.items()}
            object.__setattr__(self, name, {**defaults, **given})

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {"drift_pp": dict(self.drift_pp), "parity": dict(self.parity)}


@dataclass
class ValidationResult:
    """Everything measured for one artifact; ``passed`` is False with ``reasons`` when a gate failed."""

    format: str
    precision: str
    files: list[Path]
    passed: bool
    reasons: list[str]
    metrics: dict[str, float]
    temperature: float
    reference_logits: np.ndarray  # on the probe set
    tolerance: float

    @property
    def size(self) -> int:
        """Bytes of all the artifact's files."""
        return sum(p.stat().st_size for p in self.files if p.exists())

    def summary(self) -> str:
        """One line for progress output."""
        m = self.metrics
        parts = [f"{self.format:<8} {self.precision:<4}", f"{self.size / 1024:7.1f} KiB"]
        if "max_abs_logit_error" in m:
            parts += [
                f"max|Δz| {m['max_abs_logit_error']:.2e}", f"mean|Δz| {m['mean_abs_logit_error']:.2e}",
                f"agree {100 * m['agreement']:.2f}%", f"Δacc {m['acc_pp']:+.3f}pp", f"ΔF1 {m['f1_pp']:+.3f}pp",
                f"flips {100 * m['flip_rate']:.2f}%", f"|Δp| {m['mean_abs_dprob']:.2e}",
                f"T {self.temperature:.3f}", f"ECE {m['ece_before']:.4f}->{m['ece_after']:.4f}",
            ]
        parts.append("ok" if self.passed else "REJECTED: " + "; ".join(self.reasons))
        return "  ".join(parts)

    def manifest_entry(self, root: Path, batch: str | int) -> dict[str, Any]:
        """The bundle manifest's ``artifacts`` entry (paths relative to the bundle root ``root``)."""
        return {
            "format": self.format,
            "precision": self.precision,
            "file": self.files[0].relative_to(root).as_posix(),
            "batch": batch,
            "temperature": self.temperature,
            "reference_logits": [float(v) for v in self.reference_logits],
            "tolerance": self.tolerance,
            "validation": {k: _plain(v) for k, v in sorted(self.metrics.items())},
        }


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    return float(value)


def torch_logits(model: nn.Module, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Reference fp32 logits (N,) of the eval-mode PyTorch model."""
    import torch

    model.eval()
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.no_grad():
        out = [model(tensor[i : i + batch]).reshape(-1) for i in range(0, len(tensor), batch)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def reproduction_tolerance(
    precision: str, probe_logits: np.ndarray, probe_reference: np.ndarray, kernel_variation: float | None = None
) -> float:
    """Max |Δlogit| another device may show when it reruns this artifact on the probe.

    Devices differ in summation order (fp32), half-precision arithmetic (fp16) and rounding inside int8 kernels.
    For float files these effects stay well below the file's own distance from PyTorch, so twice that distance
    (with a small absolute + relative floor) is safe. For int8 that distance is dominated by the quantization
    itself (up to ~3 logits on the synthetic probe for the real model, where confident logits reach |z| ~ 19),
    while two kernel implementations of the same file differed by at most 0.19 (LiteRT XNNPACK vs builtin), 0.008
    (OpenVINO) and 2e-6 (ONNX Runtime vs OpenVINO): half the distance still leaves a wide margin over those and
    catches broken kernels, and ``kernel_variation`` (the measured difference between two implementations here,
    see ``runners.alternative_logits``) sets a lower bound of three times itself.
    """
    error = float(np.max(np.abs(probe_logits - probe_reference))) if len(probe_logits) else 0.0
    scale = float(np.max(np.abs(probe_logits))) if len(probe_logits) else 0.0
    candidates = [TOLERANCE_FLOOR[precision] + TOLERANCE_RELATIVE[precision] * scale,
                  TOLERANCE_ERROR_FACTOR[precision] * error]
    if kernel_variation is not None and math.isfinite(kernel_variation):
        candidates.append(TOLERANCE_KERNEL_FACTOR * kernel_variation)
    return float(max(candidates))


def validate_logits(
    fmt: str,
    precision: str,
    logits: np.ndarray,
    reference: np.ndarray,
    y: np.ndarray,
    probe_logits: np.ndarray,
    probe_reference: np.ndarray,
    *,
    t_reference: float | None = None,
    temperature_scale: float = 1.0,
    gates: Gates | None = None,
    files: list[Path] | None = None,
    threshold: float = THRESHOLD,
    kernel_variation: float | None = None,
) -> ValidationResult:
    """Judge an artifact from its logits: ``logits`` / ``reference`` on the validation crops (labels ``y``),
    ``probe_logits`` / ``probe_reference`` on the probe set; ``reference`` is PyTorch fp32. ``kernel_variation``
    is the max |Δlogit| on the probe between two kernel implementations of the file, when measured."""
    gates = gates or Gates()
    files = list(files or [])
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    probe_logits = np.asarray(probe_logits, dtype=np.float32).reshape(-1)
    y = np.asarray(y).reshape(-1)
    if logits.shape != reference.shape or logits.shape != y.shape:
        raise ValueError(f"logits {logits.shape}, reference {reference.shape} and y {y.shape} must have one shape")
    if not (np.isfinite(logits).all() and np.isfinite(probe_logits).all()):
        return ValidationResult(fmt, precision, files, False, ["the artifact produced NaN or infinite logits"],
                                {}, 1.0, probe_logits, math.inf)
    t_ref = fit_temperature(reference, y) if t_reference is None else t_reference
    # the artifact's own fit, carried over to the shipped temperature: T_shipped * T_artifact / T_reference on val
    temperature = fit_temperature(logits, y) * temperature_scale
    drift = drift_report(y, reference, logits, t_ref, temperature, threshold)
    metrics: dict[str, float] = {
        "n": drift["n"],
        "max_abs_logit_error": drift["max_abs_dlogit"],
        "mean_abs_logit_error": drift["mean_abs_dlogit"],
        "agreement": drift["agreement"],
        "flip_rate": drift["flip_rate"],
        "acc_pp": drift["acc_pp"],
        "f1_pp": drift["f1_pp"],
        "mean_abs_dprob": drift["mean_abs_dprob"],
        "accuracy": float(np.mean(predict_open(logits, temperature, threshold) == y)),
        "ece_before": expected_calibration_error(y, sigmoid(logits)),
        "ece_after": expected_calibration_error(y, sigmoid(logits / temperature)),
    }
    reasons = []
    drift_gate = gates.drift_pp[precision]
    if abs(metrics["acc_pp"]) > drift_gate:
        reasons.append(f"|Δacc| = {abs(metrics['acc_pp']):.3f} pp exceeds the {precision} drift gate {drift_gate} pp")
    scale = max(1.0, float(np.std(reference)))
    parity_limit = gates.parity[precision] * scale
    if metrics["max_abs_logit_error"] > parity_limit:
        reasons.append(
            f"max |Δlogit| = {metrics['max_abs_logit_error']:.3g} exceeds the {precision} parity gate "
            f"{parity_limit:.3g} ({gates.parity[precision]} x logit scale {scale:.3g})"
        )
    if kernel_variation is not None:
        metrics["kernel_variation"] = float(kernel_variation)
    probe_reference = np.asarray(probe_reference, np.float32).reshape(-1)
    tolerance = reproduction_tolerance(precision, probe_logits, probe_reference, kernel_variation)
    return ValidationResult(fmt, precision, files, not reasons, reasons, metrics, float(temperature),
                            probe_logits, tolerance)


def validate_artifact(
    fmt: str,
    precision: str,
    files: list[Path],
    x_val: np.ndarray,
    y_val: np.ndarray,
    reference: np.ndarray,
    probe: np.ndarray,
    probe_reference: np.ndarray,
    *,
    t_reference: float | None = None,
    temperature_scale: float = 1.0,
    gates: Gates | None = None,
    threshold: float = THRESHOLD,
) -> ValidationResult:
    """Run the artifact (``files[0]``) with its runtime backend on the validation and probe crops, then judge it.

    The probe also goes through a second kernel implementation where one is at hand, to size the tolerance.
    """
    from .runners import alternative_logits, artifact_logits

    logits = artifact_logits(fmt, files[0], x_val)
    probe_logits = artifact_logits(fmt, files[0], probe)
    alternative = alternative_logits(fmt, files[0], probe)
    variation = None if alternative is None else float(np.max(np.abs(alternative - probe_logits)))
    return validate_logits(fmt, precision, logits, reference, y_val, probe_logits, probe_reference,
                           t_reference=t_reference, temperature_scale=temperature_scale, gates=gates, files=files,
                           threshold=threshold,
                           kernel_variation=variation)


# ------------------------------------------------------------------------------------------------- probe


def synthetic_eye_images(count: int, seed: int = 0, shape: tuple[int, int] = (36, 54)) -> tuple[np.ndarray, np.ndarray]:
    """Grey float32 eye-like images (count, H, W) in [0, 255] and labels (1 = open), deterministic per seed.

    Open: a bright sclera ellipse with a dark iris and pupil; closed: a lid with a dark lash line. Position, size,
    brightness, contrast and noise vary, so the set spans easy and borderline inputs.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    labels = np.arange(count) % 2
    rng.shuffle(labels)
    images = np.empty((count, h, w), np.float32)
    for i, is_open in enumerate(labels):
        cy, cx = h / 2 + rng.uniform(-0.1, 0.1) * h, w / 2 + rng.uniform(-0.1, 0.1) * w
        ry, rx = rng.uniform(0.15, 0.28) * h, rng.uniform(0.3, 0.45) * w
        skin, contrast = rng.uniform(60, 170), rng.uniform(0.5, 1.3)
        image = np.full((h, w), skin, np.float32)
        ellipse = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        if is_open:
            image[ellipse] = skin + contrast * rng.uniform(40, 80)
            r = rng.uniform(0.5, 0.9) * ry
            iris = ((xx - cx - rng.uniform(-0.3, 0.3) * rx) ** 2 + (yy - cy) ** 2 <= r * r) & ellipse
            image[iris] = skin - contrast * rng.uniform(40, 90)
        else:
            image[ellipse] = skin + contrast * rng.uniform(0, 20)
            lash = (np.abs(yy - cy - rng.uniform(-0.2, 0.4) * ry) <= rng.uniform(0.7, 2.0)) & (np.abs(xx - cx) <= rx)
            image[lash] = skin - contrast * rng.uniform(40, 90)
        image += rng.normal(0.0, rng.uniform(2, 12), (h, w)).astype(np.float32)
        images[i] = np.clip(image, 0, 255)
    return images, labels.astype(np.int64)


def make_probe(contract: PreprocessContract = DEFAULT_CONTRACT, count: int = PROBE_COUNT, seed: int = 0) -> np.ndarray:
    """Fixed probe inputs (count, 1, S, S) float32: synthetic eyes through the shared preprocessing.

    They look like real model inputs (same resize and standardisation) without shipping any real image; the
    bundle stores the array itself (``probe.npy``), so a device compares against exactly these bytes.
    """
    if count < 1:
        raise ValueError(f"probe count must be >= 1; got {count}")
    images, _ = synthetic_eye_images(count, seed)
    return np.ascontiguousarray(preprocess_grey(images, contract)[:, None], dtype=np.float32)
