"""Named errors of the SDK. Each subclasses the built-in a caller would already catch."""

from __future__ import annotations


class EyeSDKError(Exception):
    """Base class of every error eyesdk raises on purpose."""


class InvalidCropError(EyeSDKError, ValueError):
    """The crop cannot be classified: says what was wrong and what is accepted."""


class ModelIntegrityError(EyeSDKError, ValueError):
    """A model bundle whose checksums, schema or preprocessing contract do not hold: its content is invalid."""


class BackendUnavailableError(EyeSDKError, ImportError):
    """A runtime backend cannot be imported or used here; names the extra to install."""


class MissingDependencyError(EyeSDKError, ImportError):
    """A library eyesdk needs for this input (Pillow for image files and PIL images) is not importable; names the
    extra that installs it. Not a backend: a missing runtime is a BackendUnavailableError."""


class ArtifactNotFoundError(EyeSDKError, LookupError):
    """The bundle ships no artifact for the requested format x precision (not exported, or it failed its gate)."""


class BackendRuntimeError(EyeSDKError, RuntimeError):
    """A backend that loaded and passed its probe failed while running a crop; names backend, precision and file.

    ``EyeState`` never switches to another backend mid-stream (another precision could change answers), so the
    error is raised for the caller to decide: retry, or build a new ``EyeState`` (``auto`` then passes over a backend
    that fails on the bundle's probe).
    """
