"""Glue between data, splits, training and evaluation: what `eyesdk-convert train|evaluate|cv` run."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.atomic import atomic_write_text
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, standardize

from .datasets import Sample, load_crops, read_sources, summarize
from .splits import assign_from_folds, read_folds, split_by_subject, write_folds

DEFAULT_FOLDS = "folds/shared-data-5fold.json"  # committed: every run scores on the same subject-disjoint split
SHIPPED_SIZE = 24  # input side of the shipped recipe (docs/model-card.md: as accurate as 32 px, cheaper)
# Decoded-crop cache; expanduser leaves "~" as it is where no home directory is known (containers) instead of raising.
DEFAULT_CACHE = Path(os.path.expanduser("~")) / ".cache" / "eyesdk" / "crops"


@dataclass
class PreparedData:
    samples: list[Sample]
    x: np.ndarray  # (N, S, S) resized grey in [0, 255] (resize_grey's output), before standardization
    y: np.ndarray
    folds: np.ndarray  # subject-disjoint fold index per sample
    bad: list[tuple[Path, str]]
    summary: dict[str, Any]
    contract: PreprocessContract = DEFAULT_CONTRACT

    def standardized(self, mask: np.ndarray) -> np.ndarray:
        """Model inputs of the masked crops: bit for bit what the runtime's `preprocess_grey` makes of each file."""
        return model_inputs(self.x[mask], self.contract)

    def subset(self, mask: np.ndarray) -> list[Sample]:
        return [s for s, m in zip(self.samples, mask, strict=True) if m]


def model_inputs(resized: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    """Standardized (N, S, S) float32 of resized crops in [0, 255]: `standardize` of each crop on its own.

    One crop at a time because that is what `EyeState.predict` computes, and numpy's batched reductions sum in
    another order (up to 4e-7 apart): crop by crop, what validation, evaluation and export see is the runtime's bits.
    """
    out = np.empty(resized.shape, np.float32)
    for i, crop in enumerate(resized):
        out[i] = standardize(np.asarray(crop, dtype=np.float32), contract.std_floor)
    return out


def prepare_data(
    specs: Sequence[str | Path], folds_file: str | Path, k: int = 5, seed: int = 0,
    cache_dir: str | Path | None = None, contract: PreprocessContract = DEFAULT_CONTRACT, progress: bool = True,
) -> PreparedData:
    """Read every source, decode + resize through the shared preprocessing, and attach subject-disjoint folds.

    The folds file is created on first use and reused afterwards, so every run scores on the same split.
    """
    samples = read_sources(specs)
    loaded = load_crops(samples, contract, cache_dir=cache_dir, progress=progress, standardized=False)
    if loaded.bad and progress:
        print(f"skipped {len(loaded.bad)} unreadable images, e.g. {loaded.bad[0][0]}: {loaded.bad[0][1]}")
    folds_file = Path(folds_file)
    if folds_file.exists():
        folds = assign_from_folds(loaded.samples, read_folds(folds_file))
    else:
        folds = split_by_subject(loaded.samples, folds=k, seed=seed)
        write_folds(folds_file, loaded.samples, folds, {"k": k, "seed": seed, "sources": [str(s) for s in specs]})
    summary = summarize(loaded.samples)
    summary["unreadable"] = len(loaded.bad)
    return PreparedData(loaded.samples, loaded.x, np.asarray(loaded.y, dtype=np.int64), np.asarray(folds),
                        loaded.bad, summary, contract)


def write_json(path: str | Path, data: Any) -> Path:
    """Atomic JSON write (temp file in the same folder, then rename)."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=jsonable))


def jsonable(value: Any) -> Any:
    """json.dumps default= for numpy / torch scalars, arrays and paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # torch scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
