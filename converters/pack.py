"""Packs: decoded crops at the contract size in memory-mappable uint8 shards, plus a small index, so training,
cross-validation and benchmarks read millions of crops without decoding an image again.

Layout of a pack directory (``docs/training-at-scale.md``)::

    pack.json              format, preprocessing contract, shard list, source and subject name tables (written last)
    crops-00000.npy        (n, S, S) uint8: rint(resize_grey(grey)) of each readable image, in input order
    rows-00000.npy         (n,) label u1, source u2, subject u4 (codes into the pack.json tables)
    samples-00000.jsonl    one line per crop: {"path": ..., "attrs": {...}} (read only for reports)
    skipped.jsonl          {"path": ..., "reason": ...} per image that could not be decoded (never packed)

Writing streams: images are decoded a bounded window at a time and each shard is written when full, so memory is one
shard of crops (``shard_size`` x S x S bytes) plus the sample list, whatever the number of crops. The directory appears
whole or not at all (``staging.staged_directory``). A packed crop is the contract's resize rounded to uint8 (at most
0.5 grey levels from the float resize); the runtime given that crop computes exactly what training computes from it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.atomic import atomic_write, atomic_write_text
from eyesdk.errors import EyeSDKError, InvalidCropError
from eyesdk.imagefile import read_image
from eyesdk.preprocess import PreprocessContract, resize_grey, to_grey
from eyesdk.progress import Progress

from . import staging
from .datasets import LoadedCrops, Sample
from .sampletable import SampleTable

PACK_FORMAT = "eyesdk-pack/1"
PACK_INDEX = "pack.json"
SKIPPED = "skipped.jsonl"
DEFAULT_SHARD_SIZE = 65_536  # crops per shard: 37.7 MB at 24 px, 64 MiB at 32 px
ROW_DTYPE = np.dtype([("label", "u1"), ("source", "<u2"), ("subject", "<u4")])


class PackError(EyeSDKError, ValueError):
    """A directory that is not a readable pack, or packs that cannot be read together."""


def is_pack(path: str | Path) -> bool:
    return (Path(path) / PACK_INDEX).is_file()


def packed_crop(path: Path, contract: PreprocessContract) -> np.ndarray:
    """One image file -> the (S, S) uint8 crop a pack stores: the contract's resize of its grey pixels, rounded."""
    resized = resize_grey(to_grey(read_image(path), color="rgb"), contract.size)
    return np.rint(np.clip(resized, 0.0, 255.0)).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class PackSummary:
    """What `write_pack` did: crops packed, shards written, images skipped (with the first few reasons)."""

    path: Path
    count: int
    shards: int
    skipped: int
    examples: list[tuple[str, str]]


class _Codes:
    """Names -> small integer codes in order of first appearance (the reader sorts them)."""

    def __init__(self, limit: int) -> None:
        self.codes: dict[str, int] = {}
        self.limit = limit

    def __call__(self, name: str) -> int:
        code = self.codes.setdefault(name, len(self.codes))
        if code >= self.limit:
            raise PackError(f"more than {self.limit} distinct values ({name!r}); a pack index cannot hold them")
        return code

    def names(self) -> list[str]:
        return list(self.codes)


class _ShardWriter:
    """Fills one shard buffer at a time and writes its three files when it is full (or at the end)."""

    def __init__(self, root: Path, size: int, shard_size: int) -> None:
        self.root, self.shard_size = root, shard_size
        self.crops = np.empty((shard_size, size, size), np.uint8)
        self.rows = np.empty(shard_size, ROW_DTYPE)
        self.lines: list[str] = []
        self.sources, self.subjects = _Codes(2**16), _Codes(2**32)
        self.shards: list[dict[str, Any]] = []
        self.count = 0

    def add(self, crop: np.ndarray, sample: Sample) -> None:
        n = len(self.lines)
        self.crops[n] = crop
        self.rows[n] = (sample.label, self.sources(sample.source), self.subjects(sample.subject))
        self.lines.append(json.dumps({"path": str(sample.path), "attrs": dict(sample.attrs)}, ensure_ascii=False))
        self.count += 1
        if len(self.lines) == self.shard_size:
            self.flush()

    def flush(self) -> None:
        n = len(self.lines)
        if not n:
            return
        k = len(self.shards)
        names = {"crops": f"crops-{k:05d}.npy", "rows": f"rows-{k:05d}.npy", "samples": f"samples-{k:05d}.jsonl"}
        crops, rows = self.crops[:n], self.rows[:n]
        atomic_write(self.root / names["crops"], lambda handle: np.save(handle, crops, allow_pickle=False))
        atomic_write(self.root / names["rows"], lambda handle: np.save(handle, rows, allow_pickle=False))
        atomic_write_text(self.root / names["samples"], "\n".join(self.lines) + "\n")
        self.shards.append({**names, "count": n})
        self.lines = []


def _decoded(samples: Iterable[Sample], contract: PreprocessContract, workers: int
             ) -> Iterator[tuple[Sample, np.ndarray | None, str]]:
    """(sample, crop or None, reason) in input order, with at most a bounded window of images in flight."""

    def one(sample: Sample) -> tuple[Sample, np.ndarray | None, str]:
        try:
            return sample, packed_crop(Path(sample.path), contract), ""
        except (InvalidCropError, OSError) as exc:
            return sample, None, f"{type(exc).__name__}: {exc}"

    window = 64 * max(1, workers)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        for sample in samples:
            pending.append(pool.submit(one, sample))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_pack(
    samples: Sequence[Sample],
    out: str | Path,
    contract: PreprocessContract,
    shard_size: int = DEFAULT_SHARD_SIZE,
    workers: int = 2,
    progress: bool = True,
    inputs: Sequence[str] = (),
) -> PackSummary:
    """Decode every sample once into a pack at `out`; unreadable images are listed in skipped.jsonl, never packed.

    An existing pack at `out` is replaced only once the new one is complete; any other non-empty folder is refused.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    out = Path(out)
    examples: list[tuple[str, str]] = []
    skipped = 0
    with staging.staged_directory(out, PACK_INDEX, "pack") as stage:
        writer = _ShardWriter(stage, contract.size, shard_size)
        with open(stage / SKIPPED, "w", encoding="utf-8") as bad, \
                Progress(len(samples), "packing crops", enabled=progress, unit="img") as bar:
            for sample, crop, reason in _decoded(samples, contract, workers):
                if crop is None:
                    skipped += 1
                    bad.write(json.dumps({"path": str(sample.path), "reason": reason}, ensure_ascii=False) + "\n")
                    if len(examples) < 5:
                        examples.append((str(sample.path), reason))
                else:
                    writer.add(crop, sample)
                bar.step()
            writer.flush()
        if writer.count == 0:
            raise PackError(f"none of the {len(samples)} images could be decoded (e.g. {examples[0][0]}: "
                            f"{examples[0][1]}); no pack was written" if examples else "no images to pack")
        index = {
            "format": PACK_FORMAT,
            "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "eyesdk_version": _version(),
            "contract": contract.to_dict(),
            "crop": {"dtype": "uint8", "shape": [contract.size, contract.size],
                     "values": "rint(resize_grey(grey)), 0..255"},
            "count": writer.count,
            "shards": writer.shards,
            "sources": writer.sources.names(),
            "subjects": writer.subjects.names(),
            "skipped": {"count": skipped, "file": SKIPPED},
            "inputs": [str(i) for i in inputs],
        }
        atomic_write_text(stage / PACK_INDEX, json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    return PackSummary(out, writer.count, len(writer.shards), skipped, examples)


def _version() -> str:
    try:
        return metadata.version("eyesdk")
    except metadata.PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------------------------------------ reading


class ShardedCrops:
    """The crops of several memory-mapped shards as one (N, S, S) uint8 array-like.

    ``take(indices)`` reads those crops into memory; indexing with a mask or an index array gives another view
    (no copy), so a training subset of a pack costs one int64 per crop, not its pixels.
    """

    def __init__(self, shards: Sequence[np.ndarray], rows: np.ndarray | None = None) -> None:
        self._shards = list(shards)
        sizes = [len(s) for s in self._shards]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._rows = rows
        side = self._shards[0].shape[1:] if self._shards else (0, 0)
        self.shape = (len(self), *side)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 3

    def __len__(self) -> int:
        return int(self._offsets[-1]) if self._rows is None else len(self._rows)

    def _global(self, indices: np.ndarray) -> np.ndarray:
        return indices if self._rows is None else self._rows[indices]

    def take(self, indices: Any, axis: int = 0) -> np.ndarray:
        """The crops at `indices` (any order, repeats allowed) as a new (len(indices), S, S) uint8 array."""
        if axis != 0:
            raise ValueError("ShardedCrops.take reads whole crops: axis must be 0")
        where = self._global(np.asarray(indices, dtype=np.int64).reshape(-1))
        out = np.empty((len(where), *self.shape[1:]), np.uint8)
        shard = np.searchsorted(self._offsets, where, side="right") - 1
        for k in np.unique(shard):
            mine = shard == k
            out[mine] = self._shards[k][where[mine] - self._offsets[k]]
        return out

    def __getitem__(self, key: Any) -> ShardedCrops | np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.take([int(key)])[0]
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        key = np.asarray(key)
        rows = np.flatnonzero(key) if key.dtype == bool else key.astype(np.int64)
        return ShardedCrops(self._shards, self._global(rows))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        crops = self.take(np.arange(len(self)))
        return crops if dtype is None else crops.astype(dtype)


class Pack:
    """One or more pack directories read together: crops (memory-mapped), their sample table and contract."""

    def __init__(self, roots: Sequence[str | Path]) -> None:
        if not roots:
            raise PackError("no pack given")
        self.roots = [Path(r) for r in roots]
        indexes = [_read_index(root) for root in self.roots]
        contracts = {json.dumps(ix["contract"], sort_keys=True) for ix in indexes}
        if len(contracts) > 1:
            raise PackError(f"packs {', '.join(map(str, self.roots))} were made with different preprocessing "
                            f"contracts ({' vs '.join(sorted(contracts))}); pack them with one --size")
        try:
            self.contract = PreprocessContract.from_dict(indexes[0]["contract"])
        except (TypeError, ValueError) as exc:
            raise PackError(f"{self.roots[0]}: {exc}") from None
        self.skipped = sum(int(ix["skipped"]["count"]) for ix in indexes)
        self._shard_files: list[tuple[Path, dict[str, Any], int]] = []  # (root, shard entry, first row)
        shards, rows = [], []
        for root, index in zip(self.roots, indexes, strict=True):
            for entry in index["shards"]:
                self._shard_files.append((root, entry, sum(len(s) for s in shards)))
                crops, table = _open_shard(root, entry, self.contract.size, index)
                shards.append(crops)
                rows.append((table, index["sources"], index["subjects"]))
        self.crops = ShardedCrops(shards)
        self.table = self._table(rows)
        self._cache: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self.crops)

    def load(self, rows: np.ndarray | None = None, contract: PreprocessContract | None = None) -> LoadedCrops:
        """Model-ready crops of some rows (all by default), as `datasets.load_crops` returns them for files:
        standardized crop by crop through the contract (or ``contract``: a bundle's, which may standardize inside
        its artifacts; it must describe the pack's crops), with their labels and samples."""
        from .pipeline import model_inputs

        if contract is not None and not contract.same_crops(self.contract):
            raise ValueError(f"the pack holds crops of contract {self.contract.to_dict()}, not {contract.to_dict()}")
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        x = model_inputs(self.crops.take(rows), contract or self.contract)
        return LoadedCrops(x=x, y=self.table.labels[rows], samples=self.table.read_samples(rows), bad=[])

    def _table(self, rows: list[tuple[np.ndarray, list[str], list[str]]]) -> SampleTable:
        """Merge every shard's codes into one table with sorted name tables (codes remapped)."""
        sources = np.unique(np.asarray([n for _, names, _ in rows for n in names], dtype=str))
        subjects = np.unique(np.asarray([n for _, _, names in rows for n in names], dtype=str))
        labels, source_codes, subject_codes = [], [], []
        for table, source_names, subject_names in rows:
            source_map = np.searchsorted(sources, np.asarray(source_names, dtype=str))
            subject_map = np.searchsorted(subjects, np.asarray(subject_names, dtype=str))
            labels.append(table["label"])
            source_codes.append(source_map[table["source"]])
            subject_codes.append(subject_map[table["subject"]])
        return SampleTable(np.concatenate(labels).astype(np.uint8), np.concatenate(source_codes).astype(np.int64),
                           np.concatenate(subject_codes).astype(np.int64), sources, subjects, self._samples)

    def _samples(self, rows: np.ndarray) -> list[Sample]:
        """Sample objects of the given rows, reading only the samples-*.jsonl files of the shards they lie in."""
        rows = np.asarray(rows, dtype=np.int64)
        firsts = np.array([first for _, _, first in self._shard_files], dtype=np.int64)
        shard_of = np.searchsorted(firsts, rows, side="right") - 1
        out = []
        for row, k in zip(rows.tolist(), shard_of.tolist(), strict=True):
            root, entry, first = self._shard_files[k]
            lines = self._cache.get(k)
            if lines is None:
                lines = self._cache[k] = (root / entry["samples"]).read_text(encoding="utf-8").splitlines()
            record = json.loads(lines[row - first])
            out.append(Sample(Path(record["path"]), int(self.table.labels[row]),
                              str(self.table.sources[self.table.source_codes[row]]),
                              str(self.table.subjects[self.table.subject_codes[row]]), dict(record["attrs"])))
        return out


def _read_index(root: Path) -> dict[str, Any]:
    path = root / PACK_INDEX
    if not path.is_file():
        raise PackError(f"{root} is not a pack: it has no {PACK_INDEX} (make one with `eyesdk-convert pack`)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"{path}: unreadable pack index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != PACK_FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise PackError(f"{path}: not a pack index (format {found!r}, expected {PACK_FORMAT!r})")
    for key in ("contract", "shards", "sources", "subjects", "skipped", "count"):
        if key not in index:
            raise PackError(f"{path}: pack index lacks {key!r}")
    if not index["shards"]:
        raise PackError(f"{path}: the pack holds no shards")
    if sum(int(s["count"]) for s in index["shards"]) != index["count"]:
        raise PackError(f"{path}: its shards hold {sum(int(s['count']) for s in index['shards'])} crops, "
                        f"the index says {index['count']}")
    return index


def _open_shard(root: Path, entry: dict[str, Any], size: int, index: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map one shard's crops and read its rows, checking both against the index."""
    for key in ("crops", "rows", "samples"):
        name = entry.get(key)
        if not isinstance(name, str) or Path(name).name != name:
            raise PackError(f"{root / PACK_INDEX}: shard entry {entry!r} names no plain file for {key!r}")
    try:
        crops = np.load(root / entry["crops"], mmap_mode="r", allow_pickle=False)
        rows = np.load(root / entry["rows"], allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PackError(f"{root}: shard {entry['crops']} is unreadable ({exc})") from None
    count = int(entry["count"])
    if crops.dtype != np.uint8 or crops.shape != (count, size, size):
        raise PackError(f"{root / entry['crops']}: holds {crops.dtype} {crops.shape}, the index says "
                        f"uint8 ({count}, {size}, {size})")
    if rows.dtype != ROW_DTYPE or rows.shape != (count,):
        raise PackError(f"{root / entry['rows']}: holds {rows.dtype} {rows.shape}, expected {count} index rows")
    if count and (rows["label"].max() > 1 or rows["source"].max() >= len(index["sources"])
                  or rows["subject"].max() >= len(index["subjects"])):
        raise PackError(f"{root / entry['rows']}: labels must be 0/1 and codes must index the pack.json tables")
    return crops, rows
