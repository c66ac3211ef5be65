"""``import eyesdk`` is cheap: no runtime backend, no torch, well under 0.2 s; heavy pieces load on first use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import eyesdk

HEAVY = ("torch", "onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime", "PIL", "click", "onnx")
ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_is_fast_and_light() -> None:
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "import eyesdk\n"
        "dt = time.perf_counter() - t\n"
        f"print(json.dumps({{'dt': dt, 'loaded': [m for m in {HEAVY!r} if m in sys.modules],"
        " 'numpy': 'numpy' in sys.modules}))\n"
    )
    best = min((run_python(code) for _ in range(3)), key=lambda r: r["dt"])  # best of 3: a busy CI core is not us
    assert best["loaded"] == []
    assert best["dt"] < 0.2, f"import eyesdk took {best['dt']:.3f} s"
    assert best["numpy"] is False


def test_public_names_load_no_backend() -> None:
    code = (
        "import json, sys\n"
        "import eyesdk\n"
        "names = [eyesdk.EyeState, eyesdk.EyePrediction, eyesdk.InvalidCropError, eyesdk.ModelIntegrityError,"
        " eyesdk.BackendUnavailableError, eyesdk.__version__]\n"
        "available = eyesdk.available_backends()\n"
        f"print(json.dumps({{'loaded': [m for m in {HEAVY!r} if m in sys.modules], 'available': available}}))\n"
    )
    result = run_python(code)
    assert result["loaded"] == []
    assert set(result["available"]) <= {"onnxruntime", "openvino", "tflite"}


def test_public_api_names() -> None:
    for name in ("EyeState", "EyePrediction", "available_backends", "InvalidCropError", "ModelIntegrityError",
                 "BackendUnavailableError", "__version__"):
        assert name in eyesdk.__all__ and hasattr(eyesdk, name)
    assert {"EyeState", "available_backends"} <= set(dir(eyesdk))
    with pytest.raises(AttributeError, match="module 'eyesdk' has no attribute 'Nope'"):
        eyesdk.Nope  # noqa: B018


def test_errors_subclass_builtins() -> None:
    """Every named error eyesdk defines is an EyeSDKError *and* a built-in a caller would already catch (other
    than bare Exception), and is exported; the expected built-in of each is pinned."""
    import inspect

    from eyesdk import errors

    expected = {
        "InvalidCropError": ValueError,
        "ModelIntegrityError": ValueError,
        "BackendUnavailableError": ImportError,
        "MissingDependencyError": ImportError,
        "ArtifactNotFoundError": LookupError,
        "BackendRuntimeError": RuntimeError,
    }
    defined = {name for name, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, errors.EyeSDKError) and cls is not errors.EyeSDKError}
    assert defined == set(expected), "a new error needs its built-in pinned here"
    for name, base in expected.items():
        cls = getattr(errors, name)
        assert issubclass(cls, base) and issubclass(cls, errors.EyeSDKError), name
        assert name in eyesdk.__all__ and getattr(eyesdk, name) is cls, name
    assert not issubclass(errors.MissingDependencyError, errors.BackendUnavailableError)  # Pillow is no backend
    assert not issubclass(errors.ArtifactNotFoundError, ImportError)  # a bundle's content is not an import


def test_every_named_error_anywhere_subclasses_a_builtin() -> None:
    """Not only eyesdk.errors: every EyeSDKError subclass the packages define (stream, locators, converters) is also
    a built-in other than Exception, so ``except ValueError`` / ``except OSError`` callers catch it."""
    import builtins
    import importlib

    for module in ("eyesdk.stream.errors", "eyesdk.locators.errors", "eyesdk.converters.datasets",
                   "eyesdk.converters.pack", "eyesdk.converters.bundle", "eyesdk.converters.distributed"):
        try:
            importlib.import_module(module)
        except ImportError:  # a runtime-only install has no converters: check what is here
            continue
    builtin_errors = {c for c in vars(builtins).values() if isinstance(c, type) and issubclass(c, BaseException)}
    seen, todo = set(), [eyesdk.EyeSDKError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    assert len(seen) >= 6
    for cls in seen:
        assert {c for c in cls.__mro__ if c in builtin_errors} - {Exception, BaseException}, cls


def test_one_version_number() -> None:
    """pyproject reads the version from eyesdk.__version__ (dynamic) and the installed metadata agrees."""
    from importlib import metadata

    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    assert re.search(r'^version = \{ attr = "eyesdk.__version__" \}', text, re.M)
    assert not re.search(r'^version = "', text, re.M)
    assert metadata.version("eyesdk") == eyesdk.__version__
