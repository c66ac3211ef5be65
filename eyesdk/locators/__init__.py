"""Eye locators behind one protocol, ``locate(frame) -> eyes``, and the choice between them.

- ``mediapipe`` (default): MediaPipe's face detector + 468-point mesh on eyesdk's backends, with tracking; its model
  files come from ``eyesdk models fetch-locator``.
- ``haar``: OpenCV's frontal-face cascade with the eyes placed by face geometry; no download (``eyesdk[stream]``).
- ``FixedRegionLocator``: eyes at known places, nothing detected.

``auto`` takes the first that can run here and says in a log line why it passed over another (the same rule as the
runtime's backend choice); an explicitly named locator that cannot run raises with the fix.
"""

from __future__ import annotations

import importlib
import logging

from ..lazy import lazy_attributes
from .base import EyeLocation, Locator
from .errors import FrameError, LocatorFetchError, LocatorModelMissingError

__all__ = [
    "LOCATORS",
    "EyeLocation",
    "FixedRegionLocator",
    "FrameError",
    "HaarLocator",
    "Locator",
    "LocatorFetchError",
    "LocatorModelMissingError",
    "MediaPipeLocator",
    "make_locator",
]

logger = logging.getLogger("eyesdk")

# name -> (module, class), in the order "auto" tries them
LOCATORS: dict[str, tuple[str, str]] = {
    "mediapipe": ("eyesdk.locators.landmarks", "MediaPipeLocator"),
    "haar": ("eyesdk.locators.haar", "HaarLocator"),
}
_LAZY = {**{cls: mod for mod, cls in LOCATORS.values()}, "FixedRegionLocator": "eyesdk.locators.fixed"}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


def _build(name: str, color: str) -> Locator:
    module, cls = LOCATORS[name]
    return getattr(importlib.import_module(module), cls)(color=color)


def make_locator(spec: str | Locator, color: str = "bgr") -> Locator:
    """A locator from a name ("auto", "mediapipe", "haar") or a ready ``Locator`` object (returned as is)."""
    if isinstance(spec, str):
        if spec == "auto":
            reasons = []
            for name in LOCATORS:
                try:
                    locator = _build(name, color)
                except (ImportError, FileNotFoundError) as exc:  # BackendUnavailable, LocatorModelMissing
                    reasons.append(f"{name}: {exc}")
                    continue
                if reasons:
                    logger.info("eyesdk: locator 'auto' uses %s (%s)", name, "; ".join(reasons))
                return locator
            raise LocatorModelMissingError("no eye locator can run here: " + " | ".join(reasons))
        if spec not in LOCATORS:
            raise ValueError(
                f"unknown locator {spec!r}; choose 'auto', {', '.join(map(repr, LOCATORS))}, a Locator object such as "
                "eyesdk.locators.FixedRegionLocator({...}), or None (frames are eye crops)"
            )
        return _build(spec, color)
    if isinstance(spec, Locator):
        return spec
    raise TypeError(f"locator must be a name, a Locator (with name, locate and reset) or None, got "
                    f"{type(spec).__name__}")
