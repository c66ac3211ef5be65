"""Runtime backends, one small module each, looked up by name.

Availability is probed with ``importlib.util.find_spec`` so that asking "what could run here?" imports no runtime:
an edge process that only ever uses TFLite must not pay for importing OpenVINO. Selection and tests go through
``is_available`` and ``load_backend`` (module attributes, so tests can monkeypatch them).
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata

from ..errors import BackendUnavailableError
from ..formats import BACKENDS, format_of_backend
from .base import Backend, Runner

__all__ = [
    "Backend",
    "Runner",
    "available_backends",
    "backend_version",
    "install_hint",
    "is_available",
    "load_backend",
]

def check_name(backend: str) -> str:
    """Return the backend name if known, else raise ValueError listing the known ones."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or 'auto'")
    return backend


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent package or a half-removed install
        return False


def is_available(backend: str) -> bool:
    """True when one of the backend's runtime packages is installed (found without importing it)."""
    return any(_module_exists(m) for m in format_of_backend(check_name(backend)).providers)


def available_backends() -> list[str]:
    """Backends whose runtime package is installed here, in the format table's order. Imports none of them."""
    return [b for b in BACKENDS if is_available(b)]


def install_hint(backend: str) -> str:
    """The pip command that installs a backend's runtime."""
    return f"pip install 'eyesdk[{format_of_backend(check_name(backend)).extra}]'"


def backend_version(backend: str) -> str | None:
    """Installed version of the backend's runtime distribution, read from metadata (no import), or None."""
    for dist in format_of_backend(check_name(backend)).distributions:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def load_backend(backend: str) -> Backend:
    """Import eyesdk's module for a backend; raises BackendUnavailableError (an ImportError) when it is missing."""
    if not is_available(backend):
        raise BackendUnavailableError(f"backend {backend!r} is not installed; {install_hint(backend)}")
    return importlib.import_module(f"{__name__}.{backend}")  # type: ignore[return-value]
