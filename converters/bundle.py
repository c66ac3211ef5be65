"""Build a model bundle (``docs/bundle-format.md``): export, validate and gate every artifact, write it atomically.

Atomicity: everything is written into a temporary directory next to the target; ``manifest.json`` (with the
sha256 and size of every other file) is written last; then the directory is renamed into place. An existing
bundle at the target is first renamed aside and deleted only once the new one stands in its place, so an
exception or a kill at any point leaves either the old bundle or the new one, never a half bundle. What a killed
build leaves beside the target is removed by the next successful build (:func:`remove_stale_leftovers`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eyesdk.bundle import LABELS, MANIFEST, SCHEMA, file_sha256
from eyesdk.errors import EyeSDKError
from eyesdk.formats import FORMATS, PRECISIONS
from eyesdk.metrics import f1_score, fit_temperature, predict_open
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract

from . import export as exporters
from .calibration import CalibrationSet
from .pipeline import jsonable
from .validate import Gates, ValidationResult, make_probe, torch_logits, validate_artifact

if TYPE_CHECKING:
    from torch import nn

PROBE_FILE = "probe.npy"
OUTPUT = {"kind": "logit", "positive": "open"}
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
    text = json.dumps(full, indent=2, sort_keys=True, allow_nan=False) + "\n"
    tmp = root / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, root / MANIFEST)
    return full


def check_replaceable(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise FileExistsError(f"{target} exists and is not a directory; refusing to replace it with a bundle")
    if target.is_dir() and any(target.iterdir()) and not (target / MANIFEST).is_file():
        raise FileExistsError(
            f"{target} is a non-empty directory without {MANIFEST}, so it is not an eyesdk bundle; refusing to "
            "replace it: choose another output path or empty it"
        )


@contextlib.contextmanager
def atomic_bundle_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh staging directory next to ``target``; on success it replaces ``target`` in one rename.

    The body must write ``manifest.json`` (see :func:`write_manifest`) last. On any exception the staging
    directory is removed and ``target`` is untouched. An existing bundle is renamed aside, the new one renamed
    in, then the old one deleted; if the second rename fails the old bundle is renamed back.
    """
    target = Path(target).absolute()
    check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=_leftover_prefix(target), suffix=".building", dir=target.parent))
    try:
        yield stage
        if not (stage / MANIFEST).is_file():
            raise RuntimeError(f"bundle staged in {stage} has no {MANIFEST}; it was not completed")
        os.chmod(stage, 0o755)  # mkdtemp makes it private; a bundle is meant to be read by others
        check_replaceable(target)
        _swap_into_place(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    remove_stale_leftovers(target)


# Staging and set-aside directories are named .<target>.<host>-<pid>.<random>.building|.old: a build killed with
# SIGKILL cannot clean up after itself, so the next successful build of the same target does it, for the leftovers
# of processes of this host that no longer exist (a running build's, or another machine's on a shared disk, stay).


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname().split(".")[0])[:32] or "host"


def _leftover_prefix(target: Path) -> str:
    return f".{target.name}.{_host_tag()}-{os.getpid()}."


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_leftovers(target: Path) -> list[Path]:
    """Delete what killed builds of ``target`` left beside it; returns the removed directories.

    Called only after a new bundle stands at ``target``: after a kill between the two renames of a swap, the old
    bundle's only copy is its ``.old`` directory, and it must survive until then. POSIX only (``os.kill(pid, 0)`` is
    a liveness probe there; on Windows it would terminate the process).
    """
    if os.name != "posix":
        return []
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(_host_tag())}-(\d+)\.[^.]+\.(?:building|old)")
    removed = []
    for entry in target.parent.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _process_exists(pid):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _swap_into_place(stage: Path, target: Path) -> None:
    if not target.exists():
        os.rename(stage, target)
        return
    old = Path(tempfile.mkdtemp(prefix=_leftover_prefix(target), suffix=".old", dir=target.parent))
    os.rmdir(old)  # only the unique name is wanted
    os.rename(target, old)
    try:
        os.rename(stage, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
    threshold: float = 0.5,
    probe_count: int = 64,
    export_options: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    echo: Echo | None = None,
) -> Path:
    """Export every format x precision, validate and gate each, and write the passing ones as one bundle.

    ``source`` is a checkpoint path or ``(model, checkpoint dict)``; ``x_val`` / ``y_val`` are preprocessed,
    labelled validation crops (N, 1, S, S) float32 and 0/1 labels; ``x_calib`` preprocessed calibration crops
    (required when int8 is requested). Artifacts that fail a gate are left out and reported (progress output and
    the manifest's ``rejected`` list); if none passes, :class:`NoArtifactPassedError` is raised and any previous
    bundle at ``out_dir`` stays as it was. Returns the bundle directory.
    """
    echo = echo or _default_echo
    gates = gates or Gates()
    fmts = _select(formats, list(FORMATS), "formats")
    precs = _select(precisions, list(PRECISIONS), "precisions")
    model, ckpt = _load_source(source)
    contract = checkpoint_contract(ckpt)
    x_val = _as_crops(x_val, contract.size, "x_val")
    y_val = np.asarray(y_val).reshape(-1).astype(np.int64)
    if len(y_val) != len(x_val):
        raise ValueError(f"x_val has {len(x_val)} crops but y_val has {len(y_val)} labels")
    calib: CalibrationSet | None = None
    if "int8" in precs:
        if x_calib is None:
            raise ValueError("int8 artifacts need calibration crops; pass x_calib or leave int8 out of precisions")
        if not isinstance(x_calib, CalibrationSet):
            x_calib = CalibrationSet(_as_crops(x_calib, contract.size, "x_calib"))
        calib = x_calib
    out_dir = Path(out_dir)
    probe = make_probe(contract, probe_count)

    reference = torch_logits(model, x_val)
    probe_reference = torch_logits(model, probe)
    t_ref = fit_temperature(reference, y_val)
    ref_pred = predict_open(reference, t_ref, threshold)
    ref_acc = float(np.mean(ref_pred == y_val))
    echo(f"reference (PyTorch fp32): {len(y_val)} validation crops, accuracy {100 * ref_acc:.2f}%, "
         f"F1 {100 * f1_score(y_val, ref_pred):.2f}%, T {t_ref:.3f}"
         + (f"; {len(calib)} calibration crops" if calib is not None else ""))

    accepted: list[tuple[ValidationResult, str | int]] = []
    rejected: list[ValidationResult] = []
    with atomic_bundle_dir(out_dir) as stage:
        for fmt in fmts:
            for precision in precs:
                options = dict((export_options or {}).get((fmt, precision), {}))
                echo(f"exporting {fmt} {precision} ...")
                files = exporters.export_artifact(model, fmt, precision, stage, calib, contract=contract,
                                                  threshold=threshold, **options)
                result = validate_artifact(fmt, precision, files, x_val, y_val, reference, probe, probe_reference,
                                           t_reference=t_ref, gates=gates, threshold=threshold)
                echo(result.summary())
                if result.passed:
                    accepted.append((result, exporters.artifact_batch(fmt)))
                else:
                    rejected.append(result)
                    for path in files:
                        path.unlink(missing_ok=True)
        if not accepted:
            reasons = "; ".join(f"{r.format} {r.precision}: {', '.join(r.reasons)}" for r in rejected)
            raise NoArtifactPassedError(f"no artifact passed its gates, so no bundle was written ({reasons})")
        np.save(stage / PROBE_FILE, probe, allow_pickle=False)
        manifest = {
            "schema": SCHEMA,
            "name": name or out_dir.name,
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "eyesdk_version": exporters.eyesdk_version(),
            "preprocess": contract.to_dict(),
            "labels": list(LABELS),
            "output": dict(OUTPUT),
            "threshold": float(threshold),
            "model": _model_section(model, ckpt, contract.size),
            "training": _training_section(ckpt),
            "validation": {"count": int(len(y_val)), "positives": int(y_val.sum()), "reference_accuracy": ref_acc,
                           "reference_temperature": float(t_ref), "gates": gates.to_dict(),
                           "calibration_count": len(calib) if calib is not None else 0},
            "artifacts": [r.manifest_entry(stage, batch) for r, batch in accepted],
            "rejected": [{"format": r.format, "precision": r.precision, "reasons": list(r.reasons)} for r in rejected],
            "probe": {"file": PROBE_FILE, "count": int(len(probe))},
        }
        write_manifest(stage, manifest)
    echo(f"bundle {out_dir}: {len(accepted)} artifact(s)" + (f", {len(rejected)} rejected" if rejected else ""))
    return out_dir


def _training_section(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    section = dict(ckpt.get("data_summary") or {})
    if "temperature" in ckpt:
        section["checkpoint_temperature"] = float(ckpt["temperature"])
    for key in ("train_config", "epoch"):
        if key in ckpt:
            section[key] = ckpt[key]
    section["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return json.loads(json.dumps(section, default=jsonable))
