"""The tiny protocol every runtime backend implements: ``load(path, threads) -> Runner``, ``Runner.run(batch)``.

Keeping backends this small is what lets selection, tuning, the API and the benchmarks treat them as data: each
module imports its heavy library inside ``load`` only, so ``import eyesdk`` never pays for a runtime it does not use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # numpy is imported by the backends themselves; asking what is installed must stay import-free
    import numpy as np


class Runner(Protocol):
    """A loaded artifact, ready to run.

    ``run`` takes an already preprocessed, C-contiguous float32 batch of shape (N, 1, S, S) and returns the raw logits
    as a float32 array of shape (N,). It must be safe to call from several threads at once: each backend either relies
    on a re-entrant session or serialises internally, so the API layer needs no lock of its own.
    """

    name: str  # backend name, as in eyesdk.formats.BACKENDS
    fixed_batch: int | None  # batch size the file was exported with, or None when the batch axis is dynamic

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class Backend(Protocol):
    """A backend module: ``load`` builds a Runner for one artifact file."""

    def load(self, path: Path, threads: int) -> Runner: ...


def run_in_fixed_batches(run_one, batch: np.ndarray, size: int) -> np.ndarray:
    """Run a batch through a file exported with a fixed batch size by slicing it (the last slice is zero-padded).

    Looping is chosen over resizing the input tensor: resizing re-plans the graph for every new N and fails on
    some fixed-shape ops, while a loop of batch-1 calls costs no more than those calls would anyway.
    """
    import numpy as np

    n = batch.shape[0]
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, size):
        chunk = batch[start : start + size]
        if chunk.shape[0] < size:
            padded = np.zeros((size, *batch.shape[1:]), dtype=batch.dtype)
            padded[: chunk.shape[0]] = chunk
            out[start:n] = run_one(padded)[: n - start]
        else:
            out[start : start + size] = run_one(np.ascontiguousarray(chunk))
    return out


def one_logit_per_crop(out: np.ndarray, n: int, backend: str) -> np.ndarray:
    """Refuse an output that does not hold exactly one logit per input crop.

    Seen on OpenVINO's int8 IR on an (emulated) Cortex-A72: inference "succeeds" and returns an empty tensor. Passing
    that on would be a silent wrong answer; raising lets `auto` reject the artifact and explicit users see why.
    """
    if out.shape != (n,):
        raise RuntimeError(f"{backend} returned {out.size} values of shape {out.shape} for {n} crops; expected ({n},)")
    return out
