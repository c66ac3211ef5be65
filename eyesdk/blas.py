"""numpy's OpenBLAS held to one thread while eyesdk's batch pipeline runs: the one place eyesdk touches it.

``predict_batch`` with ``threads >= 2`` preprocesses the next chunk in the calling thread while a worker runs the
model on the current one, so both cores are busy already; OpenBLAS's own threads would only compete with that worker
(on the 2-core machine one large resize GEMM ran 7.3 ms with OpenBLAS's two threads and 4.2 ms with one, measured
while other jobs shared the cores). threadpoolctl would do this, but it is not a dependency;
the library numpy loaded is found in this process's memory map (Linux) or beside numpy (``numpy.libs``), and its
thread count is set through its own C functions with ctypes. Where neither is found (another BLAS, another OS)
nothing is changed: ``available()`` says so.

The setting is process-wide, so it is reference-counted: the first pipeline to start saves the count and sets 1,
the last to finish restores it, and a forked child starts with no pipeline running.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

# (get, set) symbol pairs, newest numpy wheels first: scipy-openblas 64-bit ints, its 32-bit build, plain OpenBLAS
_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)

_lock = threading.Lock()
_users = 0
_saved: int | None = None


def _loaded_paths() -> list[str]:
    """Shared objects with 'openblas' in their name that this process has mapped, then those beside numpy."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(" ", 1)[-1].strip()
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    import numpy

    beside = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs", "*openblas*")
    return paths + [p for p in sorted(glob.glob(beside)) if p not in paths]


@lru_cache(maxsize=1)
def _functions() -> tuple[Any, Any] | None:
    """numpy's OpenBLAS (get, set) thread-count functions, or None when they cannot be found (looked up once: the
    library stays mapped for the process's life, and across fork)."""
    import numpy  # noqa: F401  (loads the library first, so the memory map lists it)

    for path in _loaded_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            get, set_ = getattr(library, get_name, None), getattr(library, set_name, None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return get, set_
    return None


def available() -> bool:
    """Whether numpy's OpenBLAS was found and its thread count can be set."""
    return _functions() is not None


def threads() -> int | None:
    """OpenBLAS's current thread count, or None when it cannot be read."""
    functions = _functions()
    return None if functions is None else int(functions[0]())


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """OpenBLAS at one thread inside the block (however many blocks run at once), as it was after the last."""
    global _users, _saved
    functions = _functions()
    if functions is None:
        yield
        return
    get, set_ = functions
    with _lock:
        if _users == 0:
            _saved = int(get())
            set_(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                set_(_saved)
                _saved = None


def _after_fork_in_child() -> None:
    """No pipeline runs in a fresh child: restore what a parent's running one had changed, with a fresh lock."""
    global _lock, _users, _saved
    _lock = threading.Lock()
    if _users and _saved is not None and (functions := _functions()) is not None:
        functions[1](_saved)
    _users, _saved = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
