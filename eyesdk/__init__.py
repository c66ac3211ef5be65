"""eyesdk: eye open/closed classification on the edge.

``import eyesdk`` stays cheap (no numpy, no runtime, never torch): the API and the backends load on first use via
module ``__getattr__``, so a process that only checks ``eyesdk.available_backends()`` or catches
``eyesdk.InvalidCropError`` pays for neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    ArtifactNotFoundError,
    BackendRuntimeError,
    BackendUnavailableError,
    EyeSDKError,
    InvalidCropError,
    MissingDependencyError,
    ModelIntegrityError,
)
from .lazy import lazy_attributes

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
    "EyeState": "eyesdk.api",
    "EyePrediction": "eyesdk.api",
    "available_backends": "eyesdk.backends",
    **dict.fromkeys(("EyeStream", "StreamUpdate", "EyeObservation", "EyeEvent", "Alarm", "StreamConfig"),
                    "eyesdk.stream"),
}

if TYPE_CHECKING:
    from .api import EyePrediction, EyeState
    from .backends import available_backends
    from .stream import Alarm, EyeEvent, EyeObservation, EyeStream, StreamConfig, StreamUpdate


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
