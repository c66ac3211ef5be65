"""Named errors of the locators (each subclasses the built-in a caller would already catch)."""

from __future__ import annotations

from ..errors import EyeSDKError


class FrameError(EyeSDKError, ValueError):
    """A frame that cannot be searched for eyes: says what was wrong and what is accepted."""


class LocatorModelMissingError(EyeSDKError, FileNotFoundError):
    """The landmark locator's model files are not in the cache; the message names the command that fetches them."""


class LocatorFetchError(EyeSDKError, OSError):
    """Fetching the locator models failed (no network, pip missing, the wheel lacks a file); says what to do."""
