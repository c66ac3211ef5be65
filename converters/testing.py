"""Test helpers: a tiny EyeNet trained in about a second on synthetic eyes, and a full bundle built from it.

Runtime, benchmark and converter tests share :func:`make_tiny_bundle` so they exercise real artifacts of every
format without real data. Everything is seeded and runs single-threaded, so the same seed gives the same model.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch  # at import time on purpose: a runtime-only install fails at import, callers skip

from eyesdk.metrics import fit_temperature
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, preprocess_grey

from .validate import synthetic_eye_images

if TYPE_CHECKING:
    from torch import nn

TINY_WIDTHS = (4, 8)
TINY_TRAIN, TINY_VAL = 480, 240


@dataclass
class TinySetup:
    """A trained tiny model with its checkpoint dict and preprocessed (N, 1, S, S) data splits."""

    model: nn.Module
    ckpt: dict[str, Any]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def x_calib(self) -> np.ndarray:
        return self.x_train[:200]


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synthetic_crops(count: int, seed: int, contract: PreprocessContract = DEFAULT_CONTRACT
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Labelled synthetic eyes through the shared preprocessing: (count, 1, S, S) float32 and (count,) labels."""
    images, labels = synthetic_eye_images(count, seed)
    return np.ascontiguousarray(preprocess_grey(images, contract)[:, None]), labels


def train_tiny_model(seed: int = 0, contract: PreprocessContract = DEFAULT_CONTRACT, epochs: int = 8) -> TinySetup:
    """Train EyeNet(widths=(4, 8)) with dropout on synthetic eyes for a few epochs (~1 s on one core)."""
    from torch.nn import functional as F

    from .model import EyeNet

    x_train, y_train = synthetic_crops(TINY_TRAIN, 1000 + seed, contract)
    x_val, y_val = synthetic_crops(TINY_VAL, 2000 + seed, contract)
    with _torch_threads(1):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = EyeNet(TINY_WIDTHS, dropout=0.1)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).float()
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=generator)
            for start in range(0, len(xt), 32):
                idx = order[start : start + 32]
                loss = F.binary_cross_entropy_with_logits(model(xt[idx]).view(-1), yt[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            val_logits = model(torch.from_numpy(x_val)).view(-1).numpy()
    ckpt = {
        "config": dict(model.config),
        "state_dict": model.state_dict(),
        "contract": contract.to_dict(),
        "temperature": fit_temperature(val_logits, y_val),
        "data_summary": {"sources": {"synthetic": {"train": TINY_TRAIN, "val": TINY_VAL}}, "seed": seed,
                         "command": "eyesdk.converters.testing.train_tiny_model"},
    }
    return TinySetup(model, ckpt, x_train, y_train, x_val, y_val)


_BUILT: dict[tuple[Any, ...], Path] = {}  # one build per argument set and process; callers get copies


def make_tiny_bundle(
    out_dir: str | Path,
    formats: Iterable[str] | None = None,
    precisions: Iterable[str] | None = None,
    seed: int = 0,
    echo: Any = None,
    cache: bool = True,
) -> Path:
    """Train the tiny model and write a bundle (every format x precision by default) to ``out_dir``.

    The first call per (formats, precisions, seed) in a process builds it (~20 s for all nine artifacts); later
    calls copy that build, so every test module can ask for its own bundle and corrupt it freely. ``echo``
    receives the progress lines of a real build (default: discarded). The int8 drift gate is relaxed to 1 pp:
    with 240 validation crops a single flipped decision is already 0.42 pp, and this bundle is for exercising
    the runtime, not for judging quantization.
    """
    from .bundle import build_bundle, check_replaceable
    from .validate import Gates

    out_dir = Path(out_dir)
    key = (None if formats is None else tuple(formats), None if precisions is None else tuple(precisions), seed)
    cached = _BUILT.get(key) if cache else None
    if cached is None or not cached.is_dir():
        setup = train_tiny_model(seed)
        target = Path(tempfile.mkdtemp(prefix="eyesdk-tiny-bundle-")) / "bundle" if cache else out_dir
        with _torch_threads(1):
            build_bundle((setup.model, setup.ckpt), setup.x_val, setup.y_val, setup.x_calib, target,
                         formats=key[0], precisions=key[1], gates=Gates(drift_pp={"int8": 1.0}),
                         name="eyestate-tiny", echo=echo or (lambda _line: None))
        if not cache:
            return out_dir
        atexit.register(shutil.rmtree, target.parent, True)
        _BUILT[key] = cached = target
    check_replaceable(out_dir)  # never deletes anything but an empty directory or an old bundle
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(cached, out_dir)
    return out_dir
