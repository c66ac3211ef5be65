"""Backend faults: broken imports, failed probes and errors at run time, in ``auto`` and with an explicit backend.

tests/test_selection.py covers a backend that is not installed (auto: INFO line and fallback; explicit: raises
naming the extra) and one whose ``load`` raises (auto: WARNING line and fallback; explicit: raises with the original
error chained). This module adds:

- an installed runtime whose *import* is broken (found by ``find_spec``, fails in ``import``: a missing shared
  library, a half-upgraded wheel), which is neither "not installed" nor a load error of eyesdk's own;
- a runtime that loads but raises on its first run (the bundle's probe): found here, it escaped ``EyeState()`` as the
  runtime's own exception instead of being a reason to fall back;
- a runtime that raises *after* it was chosen, during ``predict`` / ``predict_batch`` / ``logits``. The decision:
  raise ``BackendRuntimeError`` (an EyeSDKError and a RuntimeError) naming backend, precision, file and bundle, with
  the runtime's error chained, and never switch backends mid-stream: another precision could change the answers of
  a running stream without anyone noticing. The EyeState stays usable (a transient fault clears) and a new
  ``EyeState`` in ``auto`` passes over a backend that fails on the probe.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from synthetic import synthetic_eye

import eyesdk
from eyesdk import backends, selection
from eyesdk.errors import BackendRuntimeError, BackendUnavailableError, EyeSDKError
from eyesdk.formats import format_of_backend
from eyesdk.selection import X86_ORDER, Candidate, RejectionKind

_real_load_backend = backends.load_backend


@pytest.fixture(autouse=True)
def pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private tuning cache and the x86 order, so the first candidate is tflite fp32 on every machine."""
    monkeypatch.setenv("EYESDK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(selection, "default_order", lambda device=None: X86_ORDER)


def need(*names: str) -> None:
    missing = [n for n in names if n not in backends.available_backends()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


# -- a broken runtime import ------------------------------------------------------------------------------------------


class _BrokenLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise ImportError(f"lib{module.__name__}.so: cannot open shared object file: No such file or directory")


class _BrokenFinder(importlib.abc.MetaPathFinder):
    """Finds the named top-level modules (so they look installed) and fails when they are executed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, _BrokenLoader())
        return None


def break_import(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    names = format_of_backend(backend).providers
    for name in [m for m in sys.modules if m.split(".")[0] in names]:
        monkeypatch.delitem(sys.modules, name)  # restored, real module objects and all, after the test
    monkeypatch.setattr(sys, "meta_path", [_BrokenFinder(names), *sys.meta_path])


def test_broken_runtime_import_makes_auto_fall_back(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    need("tflite", "onnxruntime")
    break_import(monkeypatch, "tflite")
    assert backends.is_available("tflite")  # installed, as far as anyone can tell without importing it
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == ("onnxruntime", "fp32")
    ((candidate, reason),) = es.rejected
    assert candidate == Candidate("tflite", "fp32")
    assert reason.kind is RejectionKind.LOAD_FAILED
    assert str(reason).startswith("failed to load eyestate_fp32.tflite: ImportError: lib")  # LiteRT, tflite_runtime
    assert "cannot open shared object file" in str(reason)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # present but broken: a warning, not info
    assert "passed over tflite fp32: failed to load" in caplog.records[0].getMessage()


def test_broken_runtime_import_with_an_explicit_backend_raises_with_context(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("onnxruntime")
    break_import(monkeypatch, "onnxruntime")
    message = r"onnxruntime int8 cannot run here: failed to load eyestate_int8\.onnx: ImportError: libonnxruntime"
    with pytest.raises(BackendUnavailableError, match=message) as info:
        eyesdk.EyeState(model=tiny_bundle, backend="onnxruntime", precision="int8")
    assert isinstance(info.value.__cause__.__cause__, ImportError)


# -- a runtime that raises when it runs -------------------------------------------------------------------------------


class Faulty:
    """Wraps a real runner; raises on every run while ``failing`` is set (after ``after`` good calls)."""

    def __init__(self, real: Any, failing: bool, after: int = 0) -> None:
        self.real, self.failing, self.after, self.calls = real, failing, after, 0
        self.name, self.fixed_batch = real.name, real.fixed_batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.failing and self.calls > self.after:
            raise RuntimeError(f"[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : {self.name} kernel fault")
        return self.real.run(batch)


def faulty_backend(monkeypatch: pytest.MonkeyPatch, backend: str, after: int = 0) -> list[Faulty]:
    """Make ``backend`` load fine and then raise at run time (from its (after+1)-th call); returns its runners."""
    made: list[Faulty] = []

    def load_backend(name: str) -> Any:
        module = _real_load_backend(name)
        if name != backend:
            return module

        def load(source: Any, threads: int) -> Faulty:
            made.append(Faulty(module.load(source, threads), failing=True, after=after))
            return made[-1]

        return SimpleNamespace(load=load)

    monkeypatch.setattr(backends, "load_backend", load_backend)
    return made


def test_runtime_failing_on_the_probe_makes_auto_fall_back(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    need("tflite", "onnxruntime")
    faulty_backend(monkeypatch, "tflite")
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == ("onnxruntime", "fp32")
    ((candidate, reason),) = es.rejected
    assert candidate == Candidate("tflite", "fp32")
    assert reason.kind is RejectionKind.PROBE_FAILED
    assert str(reason) == ("eyestate_fp32.tflite loaded but failed on the probe: RuntimeError: [ONNXRuntimeError] : "
                           "6 : RUNTIME_EXCEPTION : tflite kernel fault")
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_runtime_failing_on_the_probe_with_an_explicit_backend_raises(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("openvino")
    faulty_backend(monkeypatch, "openvino")
    with pytest.raises(BackendUnavailableError, match=r"openvino fp16 cannot run here: eyestate_fp16\.xml loaded but "
                                                       r"failed on the probe: RuntimeError: .*kernel fault"):
        eyesdk.EyeState(model=tiny_bundle, backend="openvino", precision="fp16")


@pytest.mark.parametrize("backend", ["tflite", "onnxruntime", "openvino"])
def test_runtime_error_after_selection_is_raised_with_context_not_switched(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, backend: str
) -> None:
    need(backend)
    crop = synthetic_eye(True, (40, 60), np.random.default_rng(3))
    reference = eyesdk.EyeState(model=tiny_bundle, backend=backend, precision="fp32").predict(crop).logit
    runners = faulty_backend(monkeypatch, backend, after=1)  # the probe passes, the first crop fails
    es = eyesdk.EyeState(model=tiny_bundle, backend=backend, precision="fp32")
    (runner,) = runners
    file = es.artifact["file"].replace(".", r"\.")
    message = rf"^{backend} fp32 \({file} of bundle 'eyestate-tiny'\) failed while running: RuntimeError: .*fault$"
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        with pytest.raises(BackendRuntimeError, match=message) as info:
            es.predict(crop)
        with pytest.raises(BackendRuntimeError, match=message):
            es.predict_batch([crop, crop])
        with pytest.raises(BackendRuntimeError, match=message):
            es.logits(es.bundle.probe()[:3])
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, EyeSDKError)
    assert isinstance(info.value.__cause__, RuntimeError) and "kernel fault" in str(info.value.__cause__)
    assert (es.backend, es.precision) == (backend, "fp32")  # no silent switch
    assert caplog.records == []  # and no fallback log line: nothing was switched

    runner.failing = False  # a transient fault clears: the same EyeState answers, with the same backend
    assert es.predict(crop).logit == reference


def test_runtime_error_in_auto_mode_does_not_switch_either(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("tflite")
    faulty_backend(monkeypatch, "tflite", after=1)
    es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == ("tflite", "fp32")
    with pytest.raises(BackendRuntimeError, match=r"^tflite fp32 \(eyestate_fp32\.tflite"):
        es.predict(synthetic_eye(False, 32))
    assert (es.backend, es.precision) == ("tflite", "fp32")
    # A new EyeState re-runs selection: a runtime that now fails at once fails its probe, and auto passes over it.
    faulty_backend(monkeypatch, "tflite", after=0)
    fresh = eyesdk.EyeState(model=tiny_bundle)
    assert fresh.backend != "tflite" and fresh.rejected[0][1].kind is RejectionKind.PROBE_FAILED


def test_input_errors_are_not_reported_as_backend_faults(tiny_bundle: Path) -> None:
    """The wrapper around the runtime call must not swallow the caller's own mistakes into a BackendRuntimeError."""
    es = eyesdk.EyeState(model=tiny_bundle, backend=backends.available_backends()[0], precision="fp32")
    with pytest.raises(eyesdk.InvalidCropError, match=r"crop is 4x4 pixels"):
        es.predict(np.zeros((4, 4), np.uint8))
    assert es.logits(np.zeros((0, 1, 32, 32), np.float32)).shape == (0,)
