"""Labelled data for the benchmark: the converters' readers and loader, optionally narrowed to one fold's subjects.

``eyesdk.converters.datasets`` and ``eyesdk.converters.splits`` import only numpy, Pillow (lazily) and eyesdk, never
torch, so the benchmark can read every layout training reads (MRL, CEW, class folders, ``path,label`` CSV) on a
runtime-only install; ``tests/benchmarks`` checks that a bench run never imports torch. Our crops go through the
one loader (``load_crops``: the contract's preprocessing, cached, bad files listed); a peer gets the same decoded
grey crops through :func:`decode_grey` and applies its own preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.preprocess import PreprocessContract


@dataclass
class LabelledData:
    """Model-ready crops (N, 1, S, S), labels, the samples they came from and what was asked for."""

    x: np.ndarray
    y: np.ndarray
    samples: list[Any]
    sources: list[str]
    subjects_from: str | None = None
    max_samples: int | None = None
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The ``data`` block of the bench document."""
        n_open = int(np.sum(self.y == 1))
        return {
            "sources": list(self.sources),
            "subjects_from": self.subjects_from,
            "max_samples": self.max_samples,
            "n": int(len(self.y)),
            "n_open": n_open,
            "n_closed": int(len(self.y)) - n_open,
            "bad_files": len(self.bad),
        }


def parse_subjects_from(spec: str) -> tuple[Path, list[int]]:
    """``FOLDS_JSON:FOLD[,FOLD...]`` -> (path, folds); the split is at the last colon so paths may contain one."""
    path, sep, folds = spec.rpartition(":")
    if not sep or not path or not folds:
        raise ValueError(f"--subjects-from {spec!r} must be FOLDS_JSON:FOLD, e.g. folds/shared-data-5fold.json:0")
    try:
        numbers = [int(f) for f in folds.split(",")]
    except ValueError:
        raise ValueError(f"--subjects-from {spec!r}: folds must be integers, e.g. 0 or 0,1; got {folds!r}") from None
    return Path(path).expanduser(), numbers


def subjects_of_folds(folds_file: Path, folds: Sequence[int]) -> set[str]:
    """The subject keys a folds file (``eyesdk-convert`` writes it) assigns to any of ``folds``."""
    from eyesdk.converters.splits import read_folds

    if not folds_file.is_file():
        raise FileNotFoundError(f"folds file {folds_file} does not exist")
    document = read_folds(folds_file)
    present = sorted(set(document["subjects"].values()))
    unknown = [f for f in folds if f not in present]
    if unknown:
        raise ValueError(f"{folds_file}: fold(s) {unknown} not present; it has folds {present}")
    return {subject for subject, fold in document["subjects"].items() if fold in set(folds)}


def subsample(samples: Sequence[Any], limit: int, seed: int = 0) -> list[Any]:
    """At most ``limit`` samples, drawn uniformly with a fixed seed and kept in their original order."""
    if limit >= len(samples):
        return list(samples)
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), size=limit, replace=False))
    return [samples[i] for i in keep]


def load_labelled(
    specs: Sequence[str | Path],
    contract: PreprocessContract,
    subjects_from: str | None = None,
    max_samples: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> LabelledData:
    """Read the sources, keep one fold's subjects if asked, cap the count, and preprocess through ``load_crops``
    (or read packs made by ``eyesdk-convert pack``: no image is decoded again)."""
    from eyesdk.converters.datasets import load_crops, read_sources
    from eyesdk.converters.pack import Pack, is_pack

    if specs and all(is_pack(spec) for spec in specs):
        crops = _packed(Pack(specs), contract, subjects_from, max_samples)
        return _labelled(crops, len(crops), specs, contract, subjects_from, max_samples)
    samples = read_sources(specs)
    if subjects_from is not None:
        folds_file, folds = parse_subjects_from(subjects_from)
        keep = subjects_of_folds(folds_file, folds)
        samples = [s for s in samples if s.subject in keep]
        if not samples:
            raise ValueError(f"no sample of {', '.join(map(str, specs))} belongs to {subjects_from}")
    if max_samples is not None:
        samples = subsample(samples, max_samples)
    crops = load_crops(samples, contract, cache_dir=cache_dir, progress=progress, standardized=True)
    return _labelled(crops, len(samples), specs, contract, subjects_from, max_samples)


def _packed(pack: Any, contract: PreprocessContract, subjects_from: str | None, max_samples: int | None) -> Any:
    """The same selection as for image sources (one fold's subjects, a seeded cap), read from a pack's rows."""
    if not pack.contract.same_crops(contract):
        raise ValueError(f"the pack holds {pack.contract.size} px crops ({pack.contract.to_dict()}) but the bundle's "
                         f"contract is {contract.to_dict()}; pack the data with --size {contract.size}")
    rows = np.arange(len(pack))
    if subjects_from is not None:
        keep = sorted(subjects_of_folds(*parse_subjects_from(subjects_from)))
        rows = rows[np.isin(pack.table.subjects[pack.table.subject_codes], keep)]
        if not len(rows):
            raise ValueError(f"no crop of the pack belongs to {subjects_from}")
    return pack.load(subsample(rows, max_samples) if max_samples is not None else rows, contract)


def _labelled(crops: Any, asked: int, specs: Sequence[str | Path], contract: PreprocessContract,
              subjects_from: str | None, max_samples: int | None) -> LabelledData:
    if len(crops) == 0:
        raise ValueError(f"none of the {asked} images of {', '.join(map(str, specs))} could be decoded")
    size = contract.size
    return LabelledData(
        x=np.ascontiguousarray(crops.x.reshape(len(crops), 1, size, size), dtype=np.float32),
        y=np.asarray(crops.y, dtype=np.int64),
        samples=list(crops.samples),
        sources=[str(s) for s in specs],
        subjects_from=subjects_from,
        max_samples=max_samples,
        bad=list(crops.bad),
    )


def decode_grey(path: str | Path) -> np.ndarray:
    """One image file -> uint8 grey (H, W), through the same decoder and grey weights ``load_crops`` uses."""
    from eyesdk.imagefile import read_image
    from eyesdk.preprocess import to_grey

    grey = to_grey(read_image(Path(path)), color="rgb")
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def pick_crop(samples: Sequence[Any], side: int = 90, scan: int = 400) -> tuple[np.ndarray, str] | None:
    """A real decoded crop whose size is closest to ``side`` among the first ``scan`` samples, for latency runs."""
    try:
        from PIL import Image
    except ImportError:
        return None
    best: tuple[int, Any] | None = None
    for sample in samples[:scan]:
        try:
            with Image.open(sample.path) as image:
                w, h = image.size
        except OSError:
            continue
        distance = abs(w - side) + abs(h - side)
        if best is None or distance < best[0]:
            best = (distance, sample)
        if distance == 0:
            break
    if best is None:
        return None
    return decode_grey(best[1].path), str(best[1].path)
