"""Choosing what runs the model: an ordered list of backend x precision candidates, each checked in turn.

Every rejected candidate keeps its reason (not installed, not in the bundle, failed to load, numbers off on this
device), so the final error can say exactly why nothing ran and what to install. An explicitly requested backend
that is not installed raises at once; ``auto`` falls back to the next candidate and says so in one log line.

The default orders are precision-major: exact fp32 on every backend before any reduced precision (fp16, then
int8, which the drift gate allows to move accuracy by up to 0.5 pp), so a fallback never trades accuracy for speed
behind the user's back. Within a precision the backend order is measured, not assumed: ``EyeState.predict`` on a
decoded 93x93 uint8 crop, batch 1, 1 thread, p50 in µs on this project's x86_64 machines
(benchmarks/peer_latency.py; tiny 357-parameter bundle / 24.6 k-parameter EyeNet(8, 16, 32, 64)):

    tflite      fp32 44 / 63   fp16 44 / 63   int8 52 / 57
    onnxruntime fp32 61 / 80   fp16 64 / 88   int8 88 / 95
    openvino    fp32 90 / 109  fp16 94 / 113  int8 93 / 106

LiteRT < ONNX Runtime < OpenVINO at every precision and size; fp16 never beats fp32 on x86 (weights are upcast).
INT8 was slower than fp32 except LiteRT on the larger net, where XNNPACK's int8 kernels win by ~10 %: which is why
``eyesdk tune`` exists, measuring the shipped bundle on the actual device and putting its winner first.

On ARM the order could not be measured on real hardware (emulation distorts rankings 100-300x), so it follows what
the runtimes are built for. LiteRT leads: ARM edge devices are its primary target (XNNPACK NEON kernels) and its
wheel is the lightest on a Raspberry Pi. ONNX Runtime follows (MLAS has aarch64 kernels). Among reduced
precisions int8 comes before fp16 there, unlike on x86: ARMv8.2+ cores have int8 dot-product instructions that
XNNPACK and MLAS use, while fp16 weights are upcast to fp32 and buy nothing. OpenVINO comes last: its ARM CPU
plugin's speed comes from computing in f16, which eyesdk overrides to f32 for reproducible logits.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backends
from .bundle import Bundle
from .device import DeviceInfo
from .errors import ArtifactNotFoundError, BackendUnavailableError, ModelIntegrityError
from .formats import BACKEND_FORMAT, BACKENDS, PRECISIONS

logger = logging.getLogger("eyesdk")

AUTO = "auto"
# (backend, precision) in the order auto tries them; see the module docstring for the measurements behind them.
X86_ORDER: tuple[tuple[str, str], ...] = (
    ("tflite", "fp32"),
    ("onnxruntime", "fp32"),
    ("openvino", "fp32"),
    ("tflite", "fp16"),
    ("onnxruntime", "fp16"),
    ("openvino", "fp16"),
    ("tflite", "int8"),
    ("onnxruntime", "int8"),
    ("openvino", "int8"),
)
ARM_ORDER: tuple[tuple[str, str], ...] = (
    ("tflite", "fp32"),
    ("onnxruntime", "fp32"),
    ("tflite", "int8"),
    ("onnxruntime", "int8"),
    ("tflite", "fp16"),
    ("onnxruntime", "fp16"),
    ("openvino", "fp32"),
    ("openvino", "fp16"),
    ("openvino", "int8"),
)


@dataclass(frozen=True)
class Candidate:
    backend: str
    precision: str

    @property
    def format(self) -> str:
        return BACKEND_FORMAT[self.backend]

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}"


class RejectionKind(enum.Enum):
    """Why a candidate was passed over. The first two are the normal state of a device (INFO when auto falls back);
    the others mean something present is broken (WARNING)."""

    NOT_INSTALLED = "not installed"
    NOT_IN_BUNDLE = "not in this bundle"
    LOAD_FAILED = "failed to load"
    PROBE_FAILED = "failed on the probe"
    NUMBERS_OFF = "numbers off on this device"

    @property
    def benign(self) -> bool:
        return self in (RejectionKind.NOT_INSTALLED, RejectionKind.NOT_IN_BUNDLE)


@dataclass(frozen=True)
class Rejection:
    """One rejected candidate's reason: its kind, for code, and the sentence a person reads (``str()``)."""

    kind: RejectionKind
    detail: str

    def __str__(self) -> str:
        return self.detail


class CandidateRejected(BackendUnavailableError):
    """A candidate that cannot run here; carries the structured reason."""

    def __init__(self, kind: RejectionKind, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(kind, detail)


@dataclass
class Selection:
    """The winner, its loaded runner, and why each candidate before it was passed over."""

    candidate: Candidate
    artifact: dict[str, Any]
    runner: backends.Runner
    rejected: list[tuple[Candidate, Rejection]] = field(default_factory=list)


def default_order(device: DeviceInfo | None = None) -> tuple[tuple[str, str], ...]:
    if device is None:
        from .device import probe

        device = probe()
    return ARM_ORDER if device.is_arm else X86_ORDER


def check_choice(backend: str, precision: str) -> None:
    """Validate user-facing names: ValueError listing what is allowed."""
    if backend != AUTO:
        backends.check_name(backend)
    if precision != AUTO and precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)} or 'auto'")


def candidates(
    backend: str = AUTO,
    precision: str = AUTO,
    preferred: tuple[str, str] | None = None,
    order: tuple[tuple[str, str], ...] | None = None,
) -> list[Candidate]:
    """The ordered candidates allowed by the request; a cached/tuned ``preferred`` choice goes first if allowed."""
    check_choice(backend, precision)
    pairs = list(order if order is not None else default_order())
    if preferred is not None and preferred in pairs:
        pairs.remove(preferred)
        pairs.insert(0, preferred)
    return [Candidate(b, p) for b, p in pairs if backend in (AUTO, b) and precision in (AUTO, p)]


def parity_error(artifact: dict[str, Any], runner: backends.Runner, probe: np.ndarray | None) -> str | None:
    """Why this runner's logits on the bundle's probe differ from the build's ``reference_logits``, or None.

    This catches a runtime that silently changes the numbers on this device (bf16 on AMX, f16 on ARM, a broken
    kernel) before it classifies a single real crop.
    """
    reference = artifact.get("reference_logits")
    if probe is None or not reference:
        return None
    reference = np.asarray(reference, dtype=np.float32).reshape(-1)
    if reference.shape[0] != probe.shape[0]:
        return f"reference_logits has {reference.shape[0]} values for {probe.shape[0]} probe inputs"
    tolerance = float(artifact.get("tolerance", 1e-3))
    got = runner.run(probe)
    if got.shape != reference.shape or not np.isfinite(got).all():
        return f"returned logits of shape {got.shape} (finite: {bool(np.isfinite(got).all())}) on the probe"
    error = float(np.max(np.abs(got - reference)))
    if not math.isfinite(error) or error > tolerance:
        return f"logits differ from the bundle's reference by {error:.4g} > tolerance {tolerance:.4g} on this device"
    return None


def load_candidate(
    bundle: Bundle, candidate: Candidate, threads: int, probe: np.ndarray | None
) -> tuple[dict[str, Any], backends.Runner]:
    """Load one candidate or raise CandidateRejected (a BackendUnavailableError) saying why it cannot run here.

    The runtime is handed the artifact's bytes as verified just now (``Bundle.artifact_files``): a file changed since
    the bundle was loaded raises ModelIntegrityError, which is not a reason to try another candidate.
    """
    if not backends.is_available(candidate.backend):
        raise CandidateRejected(RejectionKind.NOT_INSTALLED,
                                f"not installed ({backends.install_hint(candidate.backend)})")
    artifact = bundle.artifact(candidate.format, candidate.precision)
    if artifact is None:
        raise CandidateRejected(RejectionKind.NOT_IN_BUNDLE,
                                "not in this bundle (not exported, or it failed its accuracy-drift gate)")
    source = bundle.artifact_files(artifact)
    try:
        runner = backends.load_backend(candidate.backend).load(source, threads)
    except (BackendUnavailableError, ModelIntegrityError):
        raise
    except Exception as exc:  # any runtime error while loading is a reason to try the next candidate
        raise CandidateRejected(RejectionKind.LOAD_FAILED,
                                f"failed to load {artifact['file']}: {type(exc).__name__}: {exc}") from exc
    try:
        problem = parity_error(artifact, runner, probe)
    except Exception as exc:  # a runtime that loads but cannot run the probe is passed over like one that cannot load
        detail = f"{artifact['file']} loaded but failed on the probe: {type(exc).__name__}: {exc}"
        raise CandidateRejected(RejectionKind.PROBE_FAILED, detail) from exc
    if problem is not None:
        raise CandidateRejected(RejectionKind.NUMBERS_OFF, f"{artifact['file']} {problem}")
    return artifact, runner


def _final_error(bundle: Bundle, backend: str, precision: str, rejected: list[tuple[Candidate, Rejection]]) -> str:
    lines = [f"no backend can run bundle {bundle.name!r} here (backend={backend!r}, precision={precision!r}); tried:"]
    lines += [f"  - {cand}: {reason}" for cand, reason in rejected]
    if not rejected:
        lines.append("  (no candidate matches that request)")
    missing = sorted({c.backend for c, r in rejected if r.kind is RejectionKind.NOT_INSTALLED})
    if missing:
        hints = ", ".join(backends.install_hint(b) for b in missing)
        lines.append(f"install a runtime: {hints} (or pip install 'eyesdk[runtime]' for all three)")
    return "\n".join(lines)


def select(
    bundle: Bundle,
    backend: str = AUTO,
    precision: str = AUTO,
    threads: int = 1,
    preferred: tuple[str, str] | None = None,
    order: tuple[tuple[str, str], ...] | None = None,
) -> Selection:
    """Walk the candidates and return the first one that loads and reproduces the bundle's reference logits."""
    check_choice(backend, precision)
    if backend != AUTO and not backends.is_available(backend):
        raise BackendUnavailableError(
            f"backend {backend!r} was requested but is not installed; {backends.install_hint(backend)}"
        )
    if backend != AUTO and precision != AUTO and bundle.artifact(BACKEND_FORMAT[backend], precision) is None:
        shipped = ", ".join(f"{a['format']} {a['precision']}" for a in bundle.artifacts)
        raise ArtifactNotFoundError(
            f"bundle {bundle.name!r} has no {BACKEND_FORMAT[backend]} {precision} artifact (it ships: {shipped})"
        )
    probe = bundle.probe()
    rejected: list[tuple[Candidate, Rejection]] = []
    for candidate in candidates(backend, precision, preferred, order):
        try:
            artifact, runner = load_candidate(bundle, candidate, threads, probe)
        except CandidateRejected as exc:
            if backend != AUTO and precision != AUTO:
                raise BackendUnavailableError(f"{candidate} cannot run here: {exc}") from exc
            rejected.append((candidate, exc.rejection))
            continue
        if rejected:
            _log_fallback(candidate, rejected)
        return Selection(candidate, artifact, runner, rejected)
    raise BackendUnavailableError(_final_error(bundle, backend, precision, rejected))


@dataclass
class BatchSelection:
    """What runs batches of ``_BATCH_MIN`` crops or more: a dynamic-batch artifact of the winner's precision when the
    winner's file has a fixed batch (TFLite: a 256-stack is 256 invokes), else the winner itself (``runner`` None).
    ``rejected`` says why each dynamic-batch candidate was passed over, ``reason`` why there is no second runner."""

    candidate: Candidate | None = None
    artifact: dict[str, Any] | None = None
    runner: backends.Runner | None = None
    rejected: list[tuple[Candidate, Rejection]] = field(default_factory=list)
    reason: str = ""


def select_batch_runner(
    bundle: Bundle,
    chosen: Selection,
    threads: int,
    order: tuple[tuple[str, str], ...] | None = None,
) -> BatchSelection:
    """For a fixed-batch winner, the first dynamic-batch candidate of the same precision (in the device's order)
    that loads and reproduces the bundle's reference logits; chosen once, in ``EyeState.__init__``."""
    if chosen.runner.fixed_batch is None:
        return BatchSelection(reason=f"{chosen.candidate} runs any batch size in one call")
    rejected: list[tuple[Candidate, Rejection]] = []
    probe = bundle.probe()
    for candidate in candidates(AUTO, chosen.candidate.precision, order=order):
        artifact = bundle.artifact(candidate.format, candidate.precision)
        if candidate == chosen.candidate or (artifact is not None and artifact.get("batch") != "dynamic"):
            continue
        try:
            artifact, runner = load_candidate(bundle, candidate, threads, probe)
        except CandidateRejected as exc:
            rejected.append((candidate, exc.rejection))
            continue
        return BatchSelection(candidate, artifact, runner, rejected)
    return BatchSelection(rejected=rejected, reason=f"no dynamic-batch {chosen.candidate.precision} artifact runs here")


def _log_fallback(chosen: Candidate, rejected: list[tuple[Candidate, Rejection]]) -> None:
    """One line: INFO when candidates were merely absent, WARNING when one was present but broken."""
    benign = all(r.kind.benign for _, r in rejected)
    reasons = "; ".join(f"{c}: {r}" for c, r in rejected)
    logger.log(logging.INFO if benign else logging.WARNING, "eyesdk: using %s (passed over %s)", chosen, reasons)


__all__ = [
    "ARM_ORDER",
    "AUTO",
    "BACKENDS",
    "X86_ORDER",
    "BatchSelection",
    "Candidate",
    "CandidateRejected",
    "Rejection",
    "RejectionKind",
    "Selection",
    "candidates",
    "default_order",
    "load_candidate",
    "parity_error",
    "select",
    "select_batch_runner",
]
