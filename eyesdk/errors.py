"""Named errors of the SDK. Each subclasses the built-in a caller would already catch."""

from __future__ import annotations


class EyeSDKError(Exception):
    """Base class of every error eyesdk raises on purpose."""


class InvalidCropError(EyeSDKError, ValueError):
    """The crop cannot be classified: says what was wrong and what is accepted."""


class ModelIntegrityError(EyeSDKError):
    """A model bundle whose checksums, schema or preprocessing contract do not hold."""


class BackendUnavailableError(EyeSDKError, ImportError):
    """A runtime backend cannot be imported or used here; names the extra to install."""
