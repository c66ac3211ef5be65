"""Readers for the eye-state data layouts users download, and the one loader that makes model inputs of them.

Every reader returns `Sample`s with a label (1 open, 0 closed) and a `subject` key -- the person (or face
photo) the image shows -- because near-duplicate frames of one person must never straddle a train/test split.
Readers are strict: a file whose name and folder disagree about its label or subject raises `LabelError`
naming the file, rather than silently training on a wrong label. Only `load_crops` decodes pixels, through
`eyesdk.imagefile` and the single preprocessing path in `eyesdk.preprocess`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from eyesdk.atomic import atomic_write
from eyesdk.bundle import LABELS
from eyesdk.errors import EyeSDKError, InvalidCropError
from eyesdk.imagefile import read_image
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, preprocess_grey, resize_grey, to_grey
from eyesdk.progress import Progress

log = logging.getLogger(__name__)

CLOSED, OPEN = LABELS.index("closed"), LABELS.index("open")  # label = index into the bundle labels
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
CACHE_FORMAT = 3  # 2: resized-only crops are kept in [0, 255], as resize_grey returns them; 3: its rows-first order

# MRL: s0012_01234_0_1_1_2_1_02.png =
# subject, image id, gender, glasses, eye state, reflections, lighting, sensor.
_MRL_NAME = re.compile(
    r"^(?P<subject>s\d{4})_(?P<image_id>\d+)_(?P<gender>[01])_(?P<glasses>[01])_(?P<state>[01])"
    r"_(?P<reflections>[012])_(?P<lighting>[01])_(?P<sensor>0[123])\.png$",
    re.IGNORECASE,
)
_MRL_SUBJECT_DIR = re.compile(r"^s\d{4}$")
_MRL_ATTRS = {
    "gender": {"0": "man", "1": "woman"},
    "glasses": {"0": "no", "1": "yes"},
    "reflections": {"0": "none", "1": "small", "2": "big"},
    "lighting": {"0": "bad", "1": "good"},
    "sensor": {"01": "realsense", "02": "ids", "03": "aptina"},
}

# CEW: closed eyes `closed_eye_0002.jpg_face_2_L.jpg` (face photo, face index, side); open eyes come from LFW,
# `Aaron_Eckhart_0001_L.jpg` (person, photo number, side).
_CEW_CLOSED_NAME = re.compile(
    r"^(?P<key>closed_eye_\d+)\.[A-Za-z]+_face_(?P<face>\d+)_(?P<side>[LR])\.[A-Za-z]+$", re.IGNORECASE
)
_CEW_OPEN_NAME = re.compile(r"^(?P<key>.+)_(?P<photo>\d{4})_(?P<side>[LR])\.[A-Za-z]+$")
_CEW_FOLDERS = {  # lower-cased folder name -> (label, side)
    "closedlefteyes": (CLOSED, "L"),
    "closedrighteyes": (CLOSED, "R"),
    "openlefteyes": (OPEN, "L"),
    "openrighteyes": (OPEN, "R"),
}
_CEW_INNER = "dataset_B_Eye_Images"

_CLASS_FOLDERS = {"open": OPEN, "closed": CLOSED}
_CSV_LABELS = {"1": OPEN, "open": OPEN, "0": CLOSED, "closed": CLOSED}


class LabelError(EyeSDKError, ValueError):
    """A file whose name, folder or manifest row gives no label, or contradicting labels or subjects."""


@dataclass(frozen=True)
class Sample:
    """One labelled eye crop on disk; `subject` is the split key (`<source>:<person or photo>`)."""

    path: Path
    label: int
    source: str
    subject: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def label_name(self) -> str:
        return LABELS[self.label]


# ---- helpers


def _is_image_file(entry: os.DirEntry[str] | Path) -> bool:
    """Image by suffix; hidden files (.DS_Store, macOS `._x.png` resource forks) are never images."""
    name = entry.name
    suffix = os.path.splitext(name)[1].lower()
    return not name.startswith(".") and suffix in IMAGE_SUFFIXES and entry.is_file()


def _sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def _subdirs(folder: Path) -> list[Path]:
    return [Path(e.path) for e in _sorted_entries(folder) if e.is_dir() and not e.name.startswith(".")]


def _require_dir(root: str | Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{what}: {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{what}: {root} is not a folder")
    return root


# ---- MRL


def _is_mrl_subject_dir(folder: Path) -> bool:
    if not _MRL_SUBJECT_DIR.match(folder.name) or not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(_MRL_NAME.match(e.name) for e in entries)


def _mrl_sample(path: Path, folder_subject: str) -> Sample:
    match = _MRL_NAME.match(path.name)
    if match is None:
        raise LabelError(
            f"{path}: not an MRL file name; expected e.g. s0012_01234_0_1_1_2_1_02.png "
            "(subject, image id, gender, glasses, eye state, reflections, lighting, sensor)"
        )
    subject = match["subject"].lower()
    if subject != folder_subject.lower():
        raise LabelError(
            f"{path}: the file name says subject {subject} but it lies in folder {folder_subject}"
        )
    attrs = {name: values[match[name]] for name, values in _MRL_ATTRS.items()}
    attrs["image_id"] = match["image_id"]
    return Sample(path=path, label=int(match["state"]), source="mrl", subject=f"mrl:{subject}", attrs=attrs)


def read_mrl(root: str | Path) -> list[Sample]:
    """MRL Eye Dataset: `<root>/<subject>/<file>.png`, labels in the name; root may be one subject folder.

    The folder and the file name must name the same subject (that is the split key), else LabelError.
    """
    root = _require_dir(root, "MRL dataset")
    if _is_mrl_subject_dir(root):
        subject_dirs = [root]
    else:
        stray = [e.path for e in _sorted_entries(root) if _is_image_file(e)]
        if stray:
            raise LabelError(
                f"{stray[0]}: an image directly in {root}; MRL images must lie in subject folders"
            )
        subject_dirs = _subdirs(root)
    samples: list[Sample] = []
    for folder in subject_dirs:
        for entry in _sorted_entries(folder):
            if _is_image_file(entry):
                samples.append(_mrl_sample(Path(entry.path), folder.name))
    if not samples:
        raise ValueError(
            f"{root}: no MRL images found (expected <subject>/s0012_01234_0_1_1_2_1_02.png files)"
        )
    return samples


# ---- CEW


def _cew_folders(folder: Path) -> dict[str, Path]:
    """CEW class folders directly inside `folder`, by lower-cased name."""
    if not folder.is_dir():
        return {}
    return {p.name.lower(): p for p in _subdirs(folder) if p.name.lower() in _CEW_FOLDERS}


def _find_cew_root(root: Path) -> Path | None:
    """`root` itself or its `dataset_B_Eye_Images` folder, whichever holds the CEW class folders."""
    if _cew_folders(root):
        return root
    inner = [p for p in _subdirs(root) if p.name.lower() == _CEW_INNER.lower()] if root.is_dir() else []
    return inner[0] if inner and _cew_folders(inner[0]) else None


def _cew_sample(path: Path, label: int, side: str) -> Sample:
    folder = path.parent.name
    closed = _CEW_CLOSED_NAME.match(path.name)
    named = closed or _CEW_OPEN_NAME.match(path.name)
    if named is None:
        raise LabelError(
            f"{path}: not a CEW file name; expected closed_eye_0002.jpg_face_2_L.jpg "
            "or Aaron_Eckhart_0001_L.jpg"
        )
    if (closed is not None) != (label == CLOSED):
        kind = "closed-eye (closed_eye_...)" if closed else "open-eye (LFW person)"
        raise LabelError(f"{path}: a {kind} file name inside the {folder} folder")
    if named["side"].upper() != side:
        raise LabelError(
            f"{path}: the file name says side {named['side']} but it lies in the {folder} folder"
        )
    return Sample(path=path, label=label, source="cew", subject=f"cew:{named['key']}", attrs={"side": side})


def read_cew(root: str | Path) -> list[Sample]:
    """CEW eye patches: `{closed,open}{Left,Right}Eyes/`; root: `dataset_B_Eye_Images` or a folder holding it.

    Subject keys: the LFW person for open eyes, the face photo for closed eyes, so both eyes share a split.
    """
    root = _require_dir(root, "CEW dataset")
    base = _find_cew_root(root)
    if base is None:
        raise ValueError(
            f"{root}: no CEW folders (closedLeftEyes, closedRightEyes, openLeftEyes, openRightEyes) "
            f"here or in {root / _CEW_INNER}"
        )
    samples: list[Sample] = []
    for name, folder in sorted(_cew_folders(base).items()):
        label, side = _CEW_FOLDERS[name]
        images = [Path(e.path) for e in _sorted_entries(folder) if _is_image_file(e)]
        samples.extend(_cew_sample(path, label, side) for path in images)
    return samples


# ---- class folders


def _walk_images(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if _is_image_file(path):
                yield path


def _find_class_folders(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in list(dirnames):
            if name.lower() in _CLASS_FOLDERS:
                found.append(Path(dirpath, name))
                dirnames.remove(name)  # images below a class folder belong to it; do not look for more there
    return found


def read_class_folders(root: str | Path) -> list[Sample]:
    """Images in any `open/` and `closed/` folders below root (names in any case), at any depth inside them.

    Subject key: `folder:<root name>/<path of the folder holding open/ and closed/>`, so separate sets stay
    separate. If an image sits in a subfolder of open/ or closed/ (open/alice/1.png), that first subfolder is
    taken as the person and appended (`.../alice`), matching closed/alice/ to the same key.
    """
    root = _require_dir(root, "class folders")
    samples: list[Sample] = []
    for class_dir in _find_class_folders(root):
        label = _CLASS_FOLDERS[class_dir.name.lower()]
        set_key = (Path(root.resolve().name) / class_dir.parent.relative_to(root)).as_posix()
        for path in _walk_images(class_dir):
            inner = path.relative_to(class_dir).parts
            subject = f"folder:{set_key}/{inner[0]}" if len(inner) > 1 else f"folder:{set_key}"
            samples.append(Sample(path=path, label=label, source="folder", subject=subject))
    if not samples:
        raise ValueError(f"{root}: no png/jpg/jpeg/bmp images in any open/ or closed/ folder below it")
    return samples


# ---- CSV manifest


def _parse_label(value: str | None, where: str) -> int:
    label = _CSV_LABELS.get((value or "").strip().lower())
    if label is None:
        raise LabelError(f"{where}: label {value!r} is not one of 0, 1, open, closed")
    return label


def read_manifest_csv(csv_path: str | Path) -> list[Sample]:
    """A CSV with columns `path,label` (+ optional `subject`, other columns become attrs), paths relative to
    the CSV.

    Labels: 0/1/open/closed in any case. Without a subject column each file is its own subject (its stem).
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise FileNotFoundError(f"manifest {csv_path} does not exist or is not a file")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            return _manifest_rows(reader, csv_path)
        except csv.Error as exc:  # a field over csv.field_size_limit(), a NUL byte, a stray quote
            raise LabelError(f"{csv_path} line {reader.line_num + 1}: not a readable CSV manifest row ({exc}); "
                             "expected rows path,label[,subject,...]") from None


def _manifest_rows(reader: csv.DictReader, csv_path: Path) -> list[Sample]:
    samples: list[Sample] = []
    columns = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    if "path" not in columns or "label" not in columns:
        raise LabelError(f"{csv_path}: needs a header with columns path,label; found {reader.fieldnames}")
    known = ("", "path", "label", "subject")
    extra = {key: name for key, name in columns.items() if key not in known}
    for row in reader:
        where = f"{csv_path} row {reader.line_num}"
        raw_path = (row.get(columns["path"]) or "").strip()
        if not raw_path:
            raise LabelError(f"{where}: empty path")
        label = _parse_label(row.get(columns["label"]), where)
        path = Path(raw_path).expanduser()
        if not path.is_absolute():
            path = csv_path.parent / path
        subject = (row.get(columns["subject"]) or "").strip() if "subject" in columns else ""
        attrs = {key: (row.get(name) or "").strip() for key, name in extra.items()}
        subject = f"csv:{subject or path.stem}"
        samples.append(Sample(path=path, label=label, source="csv", subject=subject, attrs=attrs))
    return samples


# ---- detection


def _detect_dir(root: Path) -> str | None:
    if _is_mrl_subject_dir(root) or any(_is_mrl_subject_dir(p) for p in _subdirs(root)):
        return "mrl"
    if _find_cew_root(root) is not None:
        return "cew"
    if _find_class_folders(root):
        return "folder"
    return None


_READERS: dict[str, Callable[[Path], list[Sample]]] = {
    "mrl": read_mrl,
    "cew": read_cew,
    "folder": read_class_folders,
}


def read_source(spec: str | Path) -> list[Sample]:
    """Read one data source, recognising its layout: a .csv manifest, MRL, CEW, or open/closed class folders.

    A folder that is none of these but whose immediate subfolders are (e.g. a folder holding both MRL and CEW)
    reads all of them.
    """
    root = Path(spec).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data source {root} does not exist")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return read_manifest_csv(root)
        raise ValueError(f"data source {root} is a file but not a .csv manifest (columns path,label)")
    layout = _detect_dir(root)
    if layout is not None:
        return _READERS[layout](root)
    samples: list[Sample] = []
    for child in _subdirs(root):
        child_layout = _detect_dir(child)
        if child_layout is not None:
            samples.extend(_READERS[child_layout](child))
    if not samples:
        raise ValueError(
            f"{root}: no eye data recognised; expected a .csv manifest (path,label), MRL subject folders "
            "(s0012/s0012_01234_0_1_1_2_1_02.png), CEW folders (openLeftEyes, closedLeftEyes, ...) or "
            "open/ and closed/ folders of png/jpg/jpeg/bmp images"
        )
    return samples


def read_sources(specs: Iterable[str | Path]) -> list[Sample]:
    """Several sources combined; a file listed twice is kept once, twice with different labels is an error."""
    samples: list[Sample] = []
    seen: dict[str, Sample] = {}
    dropped = 0
    for spec in specs:
        for sample in read_source(spec):
            key = os.path.abspath(sample.path)
            first = seen.get(key)
            if first is None:
                seen[key] = sample
                samples.append(sample)
            elif first.label != sample.label:
                raise LabelError(
                    f"{sample.path}: labelled {first.label_name} by one source "
                    f"and {sample.label_name} by another"
                )
            else:
                dropped += 1
    if dropped:
        log.warning("%d files were listed by more than one source; each is kept once", dropped)
    return samples


def summarize(samples: Sequence[Sample]) -> dict[str, Any]:
    """Counts for the model card: images and classes per source, subjects, subjects holding only one class."""
    from .sampletable import as_table, summarize_table

    return summarize_table(as_table(samples))


# ---- loading


@dataclass
class LoadedCrops:
    """Model-ready crops: `x[i]` is `samples[i]` after preprocessing; unreadable files are listed in `bad`."""

    x: np.ndarray
    y: np.ndarray
    samples: list[Sample]
    bad: list[tuple[Path, str]]
    cache_hit: bool = False

    def __len__(self) -> int:
        return len(self.samples)


def _crop(path: Path, contract: PreprocessContract, standardized: bool) -> np.ndarray:
    grey = to_grey(read_image(path), color="rgb")
    if standardized:
        return preprocess_grey(grey, contract)
    return resize_grey(grey, contract.size)


def _file_stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def _eyesdk_version() -> str:
    try:
        return metadata.version("eyesdk")
    except metadata.PackageNotFoundError:
        return "unknown"


def _cache_key(paths: Sequence[str], contract: PreprocessContract, standardized: bool) -> str:
    unique = sorted(set(paths))
    payload = {
        "format": CACHE_FORMAT,
        "eyesdk": _eyesdk_version(),
        "contract": contract.to_dict(),
        "standardized": standardized,
        "files": [[p, *_file_stamp(p)] for p in unique],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_cache(cache_file: Path) -> tuple[dict[str, np.ndarray], dict[str, str]] | None:
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            rows = dict(zip(data["paths"].tolist(), data["x"], strict=True))
            bad = dict(zip(data["bad_paths"].tolist(), data["bad_reasons"].tolist(), strict=True))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("ignoring unreadable crop cache %s (%s); decoding again", cache_file, exc)
        return None
    return rows, bad


def _decode_all(
    paths: list[str], contract: PreprocessContract, standardized: bool, progress: bool
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    def one(path: str) -> tuple[str, np.ndarray | None, str]:
        try:
            return path, _crop(Path(path), contract, standardized), ""
        except (InvalidCropError, OSError) as exc:
            return path, None, f"{type(exc).__name__}: {exc}"

    rows: dict[str, np.ndarray] = {}
    bad: dict[str, str] = {}
    with Progress(len(paths), "decoding crops", enabled=progress, unit="img") as bar, \
            ThreadPoolExecutor(max_workers=2) as pool:
        for path, crop, reason in pool.map(one, paths):
            if crop is None:
                bad[path] = reason
            else:
                rows[path] = crop
            bar.step()
    return rows, bad


def load_crops(
    samples: Sequence[Sample],
    contract: PreprocessContract = DEFAULT_CONTRACT,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    standardized: bool = True,
) -> LoadedCrops:
    """Decode and preprocess every sample once, going on past bad files (reported in `bad` with a reason).

    `x` is (N, size, size) float32 through `preprocess_grey`; with `standardized=False` it stops after the
    contract's resize, as grey in [0, 255] (`resize_grey`'s output: standardizing it later gives exactly the bits of
    `preprocess_grey`, and training augments it before it standardizes).
    With `cache_dir`, the result is stored as an .npz keyed by the files' paths, sizes and mtimes and the
    contract, so an edited or replaced file, or a changed contract, decodes again.
    """
    keys = [os.path.abspath(s.path) for s in samples]
    cache_file = None
    cached = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"crops-{_cache_key(keys, contract, standardized)}.npz"
        cached = _read_cache(cache_file)
    if cached is None:
        rows, bad_reasons = _decode_all(sorted(set(keys)), contract, standardized, progress)
    else:
        rows, bad_reasons = cached
    if cache_file is not None and cached is None:
        good = sorted(rows)
        empty = np.zeros((0, contract.size, contract.size), np.float32)
        arrays = {
            "paths": np.array(good, dtype=str),
            "x": np.stack([rows[p] for p in good]) if good else empty,
            "bad_paths": np.array(sorted(bad_reasons), dtype=str),
            "bad_reasons": np.array([bad_reasons[p] for p in sorted(bad_reasons)], dtype=str),
        }
        atomic_write(cache_file, lambda handle: np.savez(handle, **arrays))

    kept = [(s, k) for s, k in zip(samples, keys, strict=True) if k in rows]
    missing = [k for k in keys if k not in rows and k not in bad_reasons]
    if missing:  # cannot happen with a consistent cache; refuse rather than misalign x and y
        raise RuntimeError(
            f"crop cache {cache_file} lacks {len(missing)} files, e.g. {missing[0]}; delete it"
        )
    x = (
        np.stack([rows[k] for _, k in kept]).astype(np.float32, copy=False)
        if kept
        else np.zeros((0, contract.size, contract.size), np.float32)
    )
    return LoadedCrops(
        x=x,
        y=np.array([s.label for s, _ in kept], dtype=np.uint8),
        samples=[s for s, _ in kept],
        bad=[(s.path, bad_reasons[k]) for s, k in zip(samples, keys, strict=True) if k in bad_reasons],
        cache_hit=cached is not None,
    )
