"""Build a model bundle (``docs/bundle-format.md``): export, validate and gate every artifact, write it atomically.

Atomicity: everything is written into a temporary directory next to the target; ``manifest.json`` (with the
sha256 and size of every other file) is written last; then the directory is renamed into place. An existing
bundle at the target is first renamed aside and deleted only once the new one stands in its place, so an
exception or a kill at any point leaves either the old bundle or the new one, never a half bundle. What a killed
build leaves beside the target is removed by the next successful build (``staging.remove_stale_leftovers``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eyesdk.atomic import atomic_write_text
from eyesdk.bundle import LABELS, MANIFEST, file_sha256, schema_for
from eyesdk.errors import EyeSDKError
from eyesdk.formats import FORMATS, PRECISIONS
from eyesdk.metrics import f1_score, fit_temperature, predict_open
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, standardize

from . import export as exporters
from . import staging
from .calibration import CalibrationSet
from .pipeline import jsonable
from .validate import Gates, ValidationResult, make_probe, torch_logits, validate_artifact

if TYPE_CHECKING:
    from torch import nn

PROBE_FILE = "probe.npy"
Echo = Callable[[str], None]


class NoArtifactPassedError(EyeSDKError, RuntimeError):
    """Every requested artifact failed its gates: there is nothing to put in a bundle."""


# --------------------------------------------------------------------------------------- atomic writing


def file_digests(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"sha256", "size"}}`` for every file under root except the manifest.

    Refuses symlinks and anything that is neither a file nor a directory: a bundle must be plain bytes.
    """
    files: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                raise ValueError(f"{path} is a symlink; a bundle must hold plain files only")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST:
                continue
            if not path.is_file():
                raise ValueError(f"{path} is not a regular file; a bundle must hold plain files only")
            files[rel] = {"sha256": file_sha256(path), "size": path.stat().st_size}
    return dict(sorted(files.items()))


def write_manifest(root: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``files`` (checksums of everything already in root) and write manifest.json: call it last."""
    full = {**manifest, "files": file_digests(root)}
    atomic_write_text(root / MANIFEST, json.dumps(full, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return full


def check_replaceable(target: Path) -> None:
    """Refuse a target that is not a directory, or a non-empty directory that is not a bundle."""
    staging.check_replaceable(target, MANIFEST, "bundle")


def atomic_bundle_dir(target: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A staging directory next to ``target`` that replaces it in one rename once ``manifest.json`` is written."""
    return staging.staged_directory(target, MANIFEST, "bundle")


# --------------------------------------------------------------------------------------------- building


def _select(requested: Iterable[str] | None, known: Sequence[str], what: str) -> list[str]:
    if requested is None:
        return list(known)
    requested = list(requested)
    unknown = [r for r in requested if r not in known]
    if unknown or not requested:
        raise ValueError(f"unknown or empty {what} {unknown or requested}; choose from {', '.join(known)}")
    return [k for k in known if k in requested]  # table order, duplicates dropped


def _as_crops(x: np.ndarray, size: int, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1:] != (1, size, size) or x.dtype.kind != "f" or len(x) == 0:
        raise ValueError(
            f"{what} has shape {x.shape} {x.dtype}; expected preprocessed float32 crops (N, 1, {size}, {size}), N >= 1"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _load_source(source: str | Path | tuple[nn.Module, Mapping[str, Any]]) -> tuple[nn.Module, dict[str, Any]]:
    if isinstance(source, (str, Path)):
        from .checkpoint import load_model

        return load_model(source)
    if isinstance(source, tuple) and len(source) == 2:
        model, ckpt = source
        return model.eval(), dict(ckpt)
    raise TypeError(f"source must be a checkpoint path or a (model, checkpoint dict) pair; got {type(source).__name__}")


def checkpoint_contract(ckpt: Mapping[str, Any]) -> PreprocessContract:
    """The preprocessing contract a checkpoint was trained with (DEFAULT_CONTRACT for older checkpoints)."""
    data = ckpt.get("contract")
    return PreprocessContract.from_dict(dict(data)) if data else DEFAULT_CONTRACT


def export_contract(ckpt: Mapping[str, Any], standardize_in_model: bool) -> PreprocessContract:
    """The contract a bundle of this checkpoint is written with: the training one, standardizing in the graph
    when asked (the only part of the contract that is an export choice)."""
    return dataclasses.replace(checkpoint_contract(ckpt), normalization_in_model=bool(standardize_in_model))


def _model_section(model: nn.Module, ckpt: Mapping[str, Any], size: int) -> dict[str, Any]:
    from .flops import count_macs
    from .model import count_params

    config = dict(ckpt.get("config") or getattr(model, "config", {}))
    return {**config, "head": config.get("head", "bce"), "params": count_params(model),
            "macs": count_macs(model, size), "input_size": size}


def _default_echo(message: str) -> None:
    import click

    click.echo(message)


def build_bundle(
    source: str | Path | tuple[nn.Module, Mapping[str, Any]],
    x_val: np.ndarray,
    y_val: np.ndarray,
    x_calib: np.ndarray | CalibrationSet | None,
    out_dir: str | Path,
    formats: Iterable[str] | None = None,
    precisions: Iterable[str] | None = None,
    gates: Gates | None = None,
    *,
    name: str | None = None,
    threshold: float = exporters.THRESHOLD,
    probe_count: int = 64,
    export_options: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    echo: Echo | None = None,
    temperature: float | None = None,
    standardize_in_model: bool = False,
) -> Path:
    """Export every format x precision, validate and gate each, and write the passing ones as one bundle.

    ``source`` is a checkpoint path or ``(model, checkpoint dict)``; ``x_val`` / ``y_val`` are preprocessed,
    labelled validation crops (N, 1, S, S) float32 and 0/1 labels; ``x_calib`` preprocessed calibration crops
    (required when int8 is requested). Artifacts that fail a gate are left out and reported (progress output and
    the manifest's ``rejected`` list); if none passes, :class:`NoArtifactPassedError` is raised and any previous
    bundle at ``out_dir`` stays as it was. Returns the bundle directory.

    ``temperature`` is the calibration to ship when it was measured elsewhere - the pooled out-of-fold temperature of
    the recipe's cross-validation (``eyesdk-convert cv``), which one unusual validation subject cannot skew; each
    artifact then gets it times its own drift (its fitted T over the reference's on the validation crops). None fits
    it on the validation crops.

    ``standardize_in_model`` exports every artifact with the per-crop standardization inside its graph (the
    manifest's contract says ``normalization_in_model``): ``x_val`` and ``x_calib`` are then the crops as the runtime
    feeds them (resized, not standardized), and the PyTorch reference still sees ``standardize`` of them, so the
    gates judge the in-graph arithmetic too.
    """
    if temperature is not None and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    echo = echo or _default_echo
    gates = gates or Gates()
    fmts = _select(formats, list(FORMATS), "formats")
    precs = _select(precisions, list(PRECISIONS), "precisions")
    model, ckpt = _load_source(source)
    contract = export_contract(ckpt, standardize_in_model)
    x_val, y_val, calib = _checked_inputs(x_val, y_val, x_calib, contract.size, "int8" in precs)
    ref = _reference(model, contract, x_val, y_val, make_probe(contract, probe_count), threshold, temperature)
    echo(f"reference (PyTorch fp32): {len(y_val)} validation crops, accuracy {100 * ref.accuracy:.2f}%, "
         f"F1 {100 * ref.f1:.2f}%, T {ref.temperature:.3f}"
         + (f"; {len(calib)} calibration crops" if calib is not None else ""))
    out_dir = Path(out_dir)
    with atomic_bundle_dir(out_dir) as stage:
        accepted, rejected = [], []
        for fmt in fmts:
            for precision in precs:
                options = dict((export_options or {}).get((fmt, precision), {}))
                result = _export_and_judge(model, fmt, precision, stage, calib, contract, x_val, y_val, ref, gates,
                                           threshold, options, echo)
                (accepted if result.passed else rejected).append(result)
        if not accepted:
            reasons = "; ".join(f"{r.format} {r.precision}: {', '.join(r.reasons)}" for r in rejected)
            raise NoArtifactPassedError(f"no artifact passed its gates, so no bundle was written ({reasons})")
        np.save(stage / PROBE_FILE, ref.probe, allow_pickle=False)
        write_manifest(stage, _manifest(stage, name or out_dir.name, model, ckpt, contract, threshold, ref, gates,
                                        calib, accepted, rejected))
    echo(f"bundle {out_dir}: {len(accepted)} artifact(s)" + (f", {len(rejected)} rejected" if rejected else ""))
    return out_dir


@dataclass(frozen=True)
class _Reference:
    """What the PyTorch fp32 model answers on the validation crops and the probe: every artifact is judged by it."""

    logits: np.ndarray
    probe: np.ndarray
    probe_logits: np.ndarray
    temperature: float  # shipped: given (pooled out-of-fold) or fitted on the validation crops
    fitted: float  # fitted on the validation crops
    source: str  # where `temperature` came from
    accuracy: float
    f1: float
    positives: int  # open crops among the validation crops


def _checked_inputs(x_val: np.ndarray, y_val: np.ndarray, x_calib: np.ndarray | CalibrationSet | None, size: int,
                    needs_calibration: bool) -> tuple[np.ndarray, np.ndarray, CalibrationSet | None]:
    """Validation crops and labels as (N, 1, S, S) float32 and int64, and the calibration set int8 needs."""
    x_val = _as_crops(x_val, size, "x_val")
    y_val = np.asarray(y_val).reshape(-1).astype(np.int64)
    if len(y_val) != len(x_val):
        raise ValueError(f"x_val has {len(x_val)} crops but y_val has {len(y_val)} labels")
    if not needs_calibration:
        return x_val, y_val, None
    if x_calib is None:
        raise ValueError("int8 artifacts need calibration crops; pass x_calib or leave int8 out of precisions")
    if isinstance(x_calib, CalibrationSet):
        return x_val, y_val, x_calib
    return x_val, y_val, CalibrationSet(_as_crops(x_calib, size, "x_calib"))


def _reference(model: nn.Module, contract: PreprocessContract, x_val: np.ndarray, y_val: np.ndarray,
               probe: np.ndarray, threshold: float, temperature: float | None = None) -> _Reference:
    """The trained model on the crops the artifacts are fed; it takes them standardized by numpy, whatever the
    artifacts do (so an artifact that standardizes in its graph is judged on that arithmetic too)."""
    if contract.normalization_in_model:
        x_val, torch_probe = standardize(x_val, contract.std_floor), standardize(probe, contract.std_floor)
    else:
        torch_probe = probe
    logits = torch_logits(model, x_val)
    fitted = fit_temperature(logits, y_val)
    shipped = fitted if temperature is None else float(temperature)
    decisions = predict_open(logits, shipped, threshold)
    return _Reference(logits, probe, torch_logits(model, torch_probe), shipped, fitted,
                      "validation fold" if temperature is None else "given (pooled out-of-fold)",
                      float(np.mean(decisions == y_val)), f1_score(y_val, decisions), int(y_val.sum()))


def _export_and_judge(model: nn.Module, fmt: str, precision: str, stage: Path, calib: CalibrationSet | None,
                      contract: PreprocessContract, x_val: np.ndarray, y_val: np.ndarray, ref: _Reference,
                      gates: Gates, threshold: float, options: dict[str, Any], echo: Echo) -> ValidationResult:
    """Export one artifact into the staging directory and validate it; a rejected artifact's files are removed."""
    echo(f"exporting {fmt} {precision} ...")
    files = exporters.export_artifact(model, fmt, precision, stage, calib, contract=contract, threshold=threshold,
                                      **options)
    result = validate_artifact(fmt, precision, files, x_val, y_val, ref.logits, ref.probe, ref.probe_logits,
                               t_reference=ref.temperature, temperature_scale=ref.temperature / ref.fitted,
                               gates=gates, threshold=threshold)
    echo(result.summary())
    if not result.passed:
        for path in files:
            path.unlink(missing_ok=True)
    return result


def _manifest(stage: Path, name: str, model: nn.Module, ckpt: Mapping[str, Any], contract: PreprocessContract,
              threshold: float, ref: _Reference, gates: Gates, calib: CalibrationSet | None,
              accepted: list[ValidationResult], rejected: list[ValidationResult]) -> dict[str, Any]:
    """Everything manifest.json says but the file checksums (added last, by write_manifest)."""
    return {
        "schema": schema_for(contract),
        "name": name,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "eyesdk_version": exporters.eyesdk_version(),
        "preprocess": contract.to_dict(),
        "labels": list(LABELS),
        "output": dict(exporters.OUTPUT),
        "threshold": float(threshold),
        "model": _model_section(model, ckpt, contract.size),
        "training": _training_section(ckpt),
        "validation": {"count": int(len(ref.logits)), "positives": ref.positives,
                       "reference_accuracy": ref.accuracy, "reference_temperature": float(ref.temperature),
                       "temperature_source": ref.source, "validation_temperature": float(ref.fitted),
                       "gates": gates.to_dict(), "calibration_count": len(calib) if calib is not None else 0},
        "artifacts": [r.manifest_entry(stage, exporters.artifact_batch(r.format)) for r in accepted],
        "rejected": [{"format": r.format, "precision": r.precision, "reasons": list(r.reasons)} for r in rejected],
        "probe": {"file": PROBE_FILE, "count": int(len(ref.probe))},
    }


def _training_section(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    section = dict(ckpt.get("data_summary") or {})
    if "temperature" in ckpt:
        section["checkpoint_temperature"] = float(ckpt["temperature"])
    for key in ("train_config", "epoch"):
        if key in ckpt:
            section[key] = ckpt[key]
    section["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return json.loads(json.dumps(section, default=jsonable))
