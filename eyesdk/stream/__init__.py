"""Frames to eye events: ``EyeStream`` and its values, stages and configs (numpy + one runtime backend).

Imported lazily, like ``eyesdk`` itself: ``import eyesdk.stream`` costs nothing until a name is used.
"""

from __future__ import annotations

from ..lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
