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
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, standardize_step

from .datasets import Sample, load_crops, read_sources
from .pack import Pack, PackError, ShardedCrops, is_pack
from .sampletable import SampleTable, summarize_table
from .splits import assign_table, read_folds, split_table, write_folds

DEFAULT_FOLDS = "folds/shared-data-5fold.json"  # committed: every run scores on the same subject-disjoint split
SHIPPED_SIZE = 24  # input side of the shipped recipe (docs/model-card.md: as accurate as 32 px, cheaper)
# Decoded-crop cache; expanduser leaves "~" as it is where no home directory is known (containers) instead of raising.
DEFAULT_CACHE = Path(os.path.expanduser("~")) / ".cache" / "eyesdk" / "crops"


@dataclass
class PreparedData:
    """Labelled crops with their subject-disjoint folds, from image sources (decoded) or packs (memory-mapped)."""

    table: SampleTable  # labels, sources, subjects per crop; Sample objects on demand
    x: np.ndarray | ShardedCrops  # (N, S, S) resized grey in [0, 255] (resize_grey's output), not standardized
    y: np.ndarray
    folds: np.ndarray  # subject-disjoint fold index per sample
    bad: list[tuple[Path, str]]
    summary: dict[str, Any]
    contract: PreprocessContract = DEFAULT_CONTRACT

    def standardized(self, mask: np.ndarray) -> ModelInputs:
        """Model inputs of the masked crops: bit for bit what the runtime's `preprocess_grey` makes of each file."""
        return ModelInputs(self.x[mask], self.contract)

    def fed(self, mask: np.ndarray, contract: PreprocessContract) -> ModelInputs:
        """The masked crops as artifacts exported under ``contract`` take them (resized only, where they
        standardize in their graph); ``contract`` must describe the same crops as the data's own."""
        if not contract.same_crops(self.contract):
            raise ValueError(f"the data was prepared with contract {self.contract.to_dict()}, not "
                             f"{contract.as_trained().to_dict()}")
        return ModelInputs(self.x[mask], contract)

    def subset(self, mask: np.ndarray) -> list[Sample]:
        return self.table.samples(mask)

    def sources(self, mask: np.ndarray) -> np.ndarray:
        """The source name of each masked crop (what the sampling weights go by)."""
        return self.table.source_names()[mask]


_CHUNK = 4096  # crops standardized per numpy call in model_inputs (~9 MB at 24 px)


def model_inputs(resized: np.ndarray, contract: PreprocessContract) -> np.ndarray:
    """What the contract's artifacts take, (N, S, S) float32, of resized crops in [0, 255]: the runtime's own step
    after the resize (``standardize_step``: `standardize`, or nothing where the artifact standardizes itself), in
    chunks so memory stays bounded. `standardize` gives a stack the bits it gives each crop alone, so what
    validation, evaluation and export see is what `EyeState.predict` computes."""
    step = standardize_step(contract)
    out = np.empty(resized.shape, np.float32)
    for start in range(0, len(resized), _CHUNK):
        out[start : start + _CHUNK] = step(np.asarray(resized[start : start + _CHUNK], dtype=np.float32))
    return out


class ModelInputs:
    """The model inputs of some crops (`model_inputs`: standardized, for training), computed when read
    (`np.asarray`, or one index at a time).

    Validation runs every epoch in chunks, so a pack's validation fold is never held as float32 all at once.
    """

    def __init__(self, crops: np.ndarray | ShardedCrops, contract: PreprocessContract) -> None:
        self._crops, self._contract = crops, contract
        self.shape = (len(crops), contract.size, contract.size)
        self.ndim, self.dtype = 3, np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: int | slice) -> ModelInputs | np.ndarray:
        """A slice is another lazy view (what batching and sharding take); an index is one computed crop."""
        if isinstance(key, slice):
            return ModelInputs(self._crops[key], self._contract)
        return model_inputs(self._crops.take([key], axis=0), self._contract)[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        inputs = model_inputs(self._crops.take(np.arange(len(self)), axis=0), self._contract)
        return inputs if dtype is None else inputs.astype(dtype)


def prepare_data(
    specs: Sequence[str | Path], folds_file: str | Path, k: int = 5, seed: int = 0,
    cache_dir: str | Path | None = None, contract: PreprocessContract = DEFAULT_CONTRACT, progress: bool = True,
) -> PreparedData:
    """Read every source (decoded and resized through the shared preprocessing, or memory-mapped from packs) and
    attach subject-disjoint folds.

    The folds file is created on first use and reused afterwards, so every run scores on the same split.
    """
    table, x, bad, unreadable = _crops_of(specs, contract, cache_dir, progress)
    folds_file = Path(folds_file)
    if folds_file.exists():
        folds = assign_table(table, read_folds(folds_file))
    else:
        folds = split_table(table, folds=k, seed=seed)
        write_folds(folds_file, table, folds, {"k": k, "seed": seed, "sources": [str(s) for s in specs]})
    summary = summarize_table(table)
    summary["unreadable"] = unreadable
    return PreparedData(table, x, table.labels.astype(np.int64), np.asarray(folds), bad, summary, contract)


def _crops_of(specs: Sequence[str | Path], contract: PreprocessContract, cache_dir: str | Path | None,
              progress: bool) -> tuple[SampleTable, np.ndarray | ShardedCrops, list[tuple[Path, str]], int]:
    """(table, resized crops, unreadable files, their count) of image sources, or of packs (all or none)."""
    packs = [spec for spec in specs if is_pack(spec)]
    if packs and len(packs) != len(specs):
        others = [str(spec) for spec in specs if not is_pack(spec)]
        raise PackError(f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not packed while "
                        f"{', '.join(map(str, packs))} {'is' if len(packs) == 1 else 'are'}: pack every source "
                        "(eyesdk-convert pack takes several --data) or none")
    if packs:
        pack = Pack(packs)
        if not pack.contract.same_crops(contract):
            raise PackError(f"{', '.join(map(str, packs))} holds {pack.contract.size} px crops "
                            f"({pack.contract.to_dict()}); pass --size {pack.contract.size} or pack again")
        return pack.table, pack.crops, [], pack.skipped
    loaded = load_crops(read_sources(specs), contract, cache_dir=cache_dir, progress=progress, standardized=False)
    if loaded.bad and progress:
        print(f"skipped {len(loaded.bad)} unreadable images, e.g. {loaded.bad[0][0]}: {loaded.bad[0][1]}")
    return SampleTable.from_samples(loaded.samples), loaded.x, loaded.bad, len(loaded.bad)


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
