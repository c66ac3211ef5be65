"""eyesdk: eye open/closed classification on the edge.

``import eyesdk`` stays cheap (no numpy, no runtime, never torch): the API and the backends load on first use via
module ``__getattr__``, so a process that only checks ``eyesdk.available_backends()`` or catches
``eyesdk.InvalidCropError`` pays for neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ArtifactNotFoundError,
    BackendRuntimeError,
    BackendUnavailableError,
    EyeSDKError,
    InvalidCropError,
    MissingDependencyError,
    ModelIntegrityError,
)

__version__ = "0.1.0"  # the one version number: pyproject.toml reads it (dynamic), import reads no metadata

__all__ = [
    "Alarm",
    "ArtifactNotFoundError",
    "BackendRuntimeError",
    "BackendUnavailableError",
    "EyeEvent",
    "EyeObservation",
    "EyePrediction",
    "EyeSDKError",
    "EyeState",
    "EyeStream",
    "InvalidCropError",
    "MissingDependencyError",
    "ModelIntegrityError",
    "StreamConfig",
    "StreamUpdate",
    "__version__",
    "available_backends",
]

_LAZY = {
    "EyeState": ("eyesdk.api", "EyeState"),
    "EyePrediction": ("eyesdk.api", "EyePrediction"),
    "available_backends": ("eyesdk.backends", "available_backends"),
    **{n: ("eyesdk.stream", n) for n in ("EyeStream", "StreamUpdate", "EyeObservation", "EyeEvent", "Alarm",
                                        "StreamConfig")},
}

if TYPE_CHECKING:
    from .api import EyePrediction, EyeState
    from .backends import available_backends
    from .stream import Alarm, EyeEvent, EyeObservation, EyeStream, StreamConfig, StreamUpdate


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'eyesdk' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
