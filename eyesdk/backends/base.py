"""The tiny protocol every runtime backend implements: ``load(source, threads) -> Runner``, ``Runner.run(batch)``.

Keeping backends this small is what lets selection, tuning, the API and the benchmarks treat them as data: each
module imports its heavy library inside ``load`` only, so ``import eyesdk`` never pays for a runtime it does not use.

What every backend shares lives here, once:

- **the bytes it loads** (``ModelFiles``): a runtime is handed the bytes the bundle verified, never a path it would
  open again (a file swapped after its checksum was checked would otherwise be what runs);
- **``run``** (``BaseRunner.run``): a batch straight through, or sliced for a file exported with a fixed batch size,
  and the check that exactly one logit came back per crop;
- **the thread bound** (``check_threads``): more runtime threads than this machine has CPUs crashed LiteRT and hung
  ONNX Runtime;
- **fork safety**: a child process gets every runner re-created from its bytes on the first call it makes (a
  runtime's worker threads and locks do not survive ``fork``), and a backend that must not be forked in the middle
  of a call (``gated``: OpenVINO) makes ``fork`` wait until no thread is inside one.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..formats import format_of_backend

if TYPE_CHECKING:  # numpy is imported by the backends themselves; asking what is installed must stay import-free
    import numpy as np

FORK_WAIT_S = 30.0  # how long fork() waits for a call in flight before giving up on that runner in the child


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: Any) -> int:
    """The runtime thread count, refused unless an int in 1..usable CPUs (threads=100000 crashed LiteRT)."""
    limit = usable_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= limit:
        raise ValueError(f"threads must be an int in 1..{limit} (this machine has {limit} CPUs), got {threads!r}")
    return threads


@dataclass(frozen=True, repr=False)
class ModelFiles:
    """One artifact's bytes: its main file and its sidecars, in ``Format.files`` order (OpenVINO: .xml, .bin)."""

    name: str  # the main file's bundle-relative path, for messages
    main: bytes
    sidecars: tuple[bytes, ...] = ()

    def __repr__(self) -> str:
        return f"ModelFiles({self.name!r}, {len(self.main)} bytes + {len(self.sidecars)} sidecar(s))"

    @classmethod
    def read(cls, path: Path, backend: str) -> ModelFiles:
        """The files of an artifact outside any bundle (a fresh export being validated), read as they are."""
        names = format_of_backend(backend).files(path.name)
        data = [(path.parent / name).read_bytes() for name in names]
        return cls(path.name, data[0], tuple(data[1:]))


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
    """A backend module: ``load`` builds a Runner for one artifact (verified bytes, or a path outside a bundle)."""

    def load(self, source: ModelFiles | Path, threads: int) -> Runner: ...


def run_in_fixed_batches(run_one: Callable[[Any], Any], batch: np.ndarray, size: int) -> np.ndarray:
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


class CallGate:
    """Per-thread locks around a runtime's calls, so ``fork`` can wait until no thread is inside one.

    Each calling thread takes only its own lock (uncontended: ~0.1 µs, and threads still run in parallel); the fork
    hook takes all of them, which waits for calls in flight and holds new ones back until the fork is done.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._locks: list[threading.Lock] = []
        self._register = threading.Lock()
        self._held: list[threading.Lock] = []

    def lock(self) -> threading.Lock:
        """This thread's lock (made on its first call)."""
        try:
            return self._local.lock
        except AttributeError:
            lock = threading.Lock()
            with self._register:
                self._locks.append(lock)
            self._local.lock = lock
            return lock

    def close(self, timeout: float) -> bool:
        """Wait for every call in flight and hold new ones back; False when one did not finish within timeout."""
        self._register.acquire()
        for lock in self._locks:
            if not lock.acquire(timeout=timeout):
                return False
            self._held.append(lock)
        return True

    def open(self) -> None:
        for lock in self._held:
            lock.release()
        self._held.clear()
        self._register.release()


class BaseRunner:
    """What every backend's runner shares: the verified bytes it was built from, ``run``, and fork safety.

    A subclass implements ``_open`` (build the runtime's session from ``self._source`` with ``self._threads`` threads,
    set ``fixed_batch``) and ``_run_direct`` (one runtime call on a batch the file accepts as it is).
    """

    name: str = ""
    gated: bool = False  # True: fork must wait until no thread is inside a call (the runtime hangs children otherwise)
    fixed_batch: int | None = None

    def __init__(self, source: ModelFiles | Path, threads: int) -> None:
        self._source = source if isinstance(source, ModelFiles) else ModelFiles.read(Path(source), self.name)
        self._threads = check_threads(threads)
        self._gate = CallGate() if self.gated else None
        self._open()
        _track(self)

    def _open(self) -> None:
        raise NotImplementedError

    def _run_direct(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if self.fixed_batch is None or n == self.fixed_batch:
            out = self._run_direct(batch)
        else:
            out = run_in_fixed_batches(self._run_direct, batch, self.fixed_batch)
        return one_logit_per_crop(out, n, self.name)

    # -- fork --------------------------------------------------------------------------------------------------

    def _fork_refusal(self) -> str | None:
        """Why this runner cannot be re-created in a forked child, or None (overridden where a runtime cannot)."""
        return None

    def _after_fork_in_child(self, quiesced: bool) -> None:
        """Route the next call through a rebuild: the runtime's threads and locks did not survive the fork. What the
        parent built is kept for good: destroying it would join worker threads that do not exist here."""
        _keep_forever(dict(self.__dict__))
        self._rebuild_lock = threading.Lock()
        if not quiesced:
            self._refusal = (f"this process was forked while a {self.name} call ran for over {FORK_WAIT_S:.0f} s in "
                             "its parent, so the runtime's state here cannot be trusted: create the EyeState in the "
                             "child process (after the fork), or start workers with the 'spawn' method")
        else:
            self._refusal = self._fork_refusal()
        self._run_direct = self._rebuild_then_run if self._refusal is None else self._refuse_forked  # shadows it

    def _rebuild_then_run(self, batch: np.ndarray) -> np.ndarray:
        with self._rebuild_lock:
            if "_run_direct" in self.__dict__:  # the first caller rebuilds; the others find it done
                self._gate = CallGate() if self.gated else None
                self._open()
                del self._run_direct
        return self._run_direct(batch)

    def _refuse_forked(self, batch: np.ndarray) -> np.ndarray:
        raise RuntimeError(self._refusal)


_LIVE: weakref.WeakSet[BaseRunner] = weakref.WeakSet()
_REGISTRY = threading.Lock()
_FORKING: list[tuple[BaseRunner, bool]] = []  # runners seen by the fork hook, and whether their calls were quiesced
_KEPT: list[Any] = []


def _keep_forever(obj: Any) -> None:
    """Never free obj, not even when the interpreter exits: a forked child that freed its parent's OpenVINO compiled
    model aborted (std::system_error from joining a thread of the parent), on first use or in its exit-time GC."""
    try:
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))  # a reference no finalizer knows about
    except (ImportError, AttributeError, OSError):  # no ctypes here: a module-level list, freed only at exit
        _KEPT.append(obj)


def _track(runner: BaseRunner) -> None:
    with _REGISTRY:
        _LIVE.add(runner)


def _before_fork() -> None:
    _REGISTRY.acquire()  # no runner is registered (or loses its gate) while the fork is under way
    for runner in list(_LIVE):
        gate = runner._gate
        _FORKING.append((runner, gate.close(FORK_WAIT_S) if gate is not None else True))


def _after_fork(in_child: bool) -> None:
    for runner, quiesced in _FORKING:
        if runner._gate is not None:
            runner._gate.open()
        if in_child:
            runner._after_fork_in_child(quiesced)
    _FORKING.clear()
    _REGISTRY.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=lambda: _after_fork(in_child=False),
        after_in_child=lambda: _after_fork(in_child=True),
    )
