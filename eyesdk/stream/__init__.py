"""Frames to eye events: ``EyeStream`` and its values, stages and configs (numpy + one runtime backend).

Imported lazily, like ``eyesdk`` itself: ``import eyesdk.stream`` costs nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "EyeStream": "eyesdk.stream.stream",
    "stream_config": "eyesdk.stream.stream",
    "StreamConfig": "eyesdk.stream.config",
    "EventConfig": "eyesdk.stream.events",
    "FilterConfig": "eyesdk.stream.filters",
    "AdaptationConfig": "eyesdk.stream.adaptation",
    "PersonLevels": "eyesdk.stream.adaptation",
    "LevelsState": "eyesdk.stream.adaptation",
    "QualityConfig": "eyesdk.stream.quality",
    "WindowConfig": "eyesdk.stream.window",
    "WinkConfig": "eyesdk.stream.winks",
    "StreamUpdate": "eyesdk.stream.values",
    "EyeObservation": "eyesdk.stream.values",
    "EyeEvent": "eyesdk.stream.values",
    "Alarm": "eyesdk.stream.values",
    "TimestampError": "eyesdk.stream.errors",
    "StreamClosedError": "eyesdk.stream.errors",
    "StreamConfigError": "eyesdk.stream.errors",
    "VideoSourceError": "eyesdk.stream.errors",
    "FrameError": "eyesdk.stream.errors",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'eyesdk.stream' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
