"""eyesdk.selection: ordered candidates, remembered rejection reasons, fallback in auto, immediate errors otherwise."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from runtime_helpers import copy_bundle, drop_artifacts, read_manifest, write_manifest
from synthetic import synthetic_eye

import eyesdk
from eyesdk import backends, selection
from eyesdk.bundle import load_bundle
from eyesdk.device import DeviceInfo
from eyesdk.errors import ArtifactNotFoundError, BackendUnavailableError
from eyesdk.formats import BACKENDS, PRECISIONS, format_of_backend
from eyesdk.selection import ARM_ORDER, X86_ORDER, Candidate, Rejection, RejectionKind

_real_load_backend = backends.load_backend


@pytest.fixture(autouse=True)
def x86_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pin the order so these tests read the same on an ARM machine."""
    monkeypatch.setattr(selection, "default_order", lambda device=None: X86_ORDER)


def hide(monkeypatch: pytest.MonkeyPatch, *missing: str) -> None:
    monkeypatch.setattr(backends, "is_available", lambda name: backends.check_name(name) not in missing)


def break_loading(monkeypatch: pytest.MonkeyPatch, *broken: str) -> list[str]:
    """Make the named backends' ``load`` raise, as a broken runtime install would; returns the load log."""
    loaded: list[str] = []

    def fake_load_backend(name: str):
        module = _real_load_backend(name)
        if name not in broken:
            loaded.append(name)
            return module

        def load(path: Path, threads: int):
            loaded.append(name)
            raise RuntimeError(f"{name} exploded on {path.name}")

        return SimpleNamespace(load=load)

    monkeypatch.setattr(backends, "load_backend", fake_load_backend)
    return loaded


def test_orders_cover_the_format_table() -> None:
    every = {(b, p) for b in BACKENDS for p in PRECISIONS}
    assert set(X86_ORDER) == every and len(X86_ORDER) == len(every)
    assert set(ARM_ORDER) == every and len(ARM_ORDER) == len(every)
    assert [p for _, p in X86_ORDER[:3]] == ["fp32"] * 3  # measured: int8 is slower on x86


def test_default_order_follows_the_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    device = DeviceInfo("x86_64", "Linux", "6", "cpu", (), 2, "3.11")
    assert selection.default_order(device) == X86_ORDER
    for arch in ("aarch64", "arm64", "armv7l"):
        assert selection.default_order(DeviceInfo(arch, "Linux", "6", "cpu", (), 4, "3.11")) == ARM_ORDER


def test_candidates_respect_the_request_and_put_the_preferred_first() -> None:
    assert selection.candidates()[0] == Candidate(*X86_ORDER[0])
    assert [c.backend for c in selection.candidates(backend="openvino")] == ["openvino"] * 3
    assert [c.precision for c in selection.candidates(precision="int8")] == ["int8"] * 3
    assert selection.candidates(preferred=("openvino", "int8"))[0] == Candidate("openvino", "int8")
    assert selection.candidates(backend="tflite", preferred=("openvino", "int8"))[0].backend == "tflite"
    assert len(selection.candidates(preferred=("openvino", "int8"))) == 9


def test_auto_picks_the_first_candidate(tiny_bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == X86_ORDER[0]
    assert es.rejected == []
    assert caplog.records == []


def test_auto_skips_a_missing_backend_with_one_log_line(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hide(monkeypatch, "tflite")
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == ("onnxruntime", "fp32")
    assert es.rejected == [(Candidate("tflite", "fp32"),
                            Rejection(RejectionKind.NOT_INSTALLED, "not installed (pip install 'eyesdk[tflite]')"))]
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.INFO
    assert "using onnxruntime fp32 (passed over tflite fp32: not installed" in caplog.records[0].getMessage()


def test_auto_falls_back_when_a_backend_fails_to_load(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = break_loading(monkeypatch, "tflite")
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == ("onnxruntime", "fp32")
    assert loaded == ["tflite", "onnxruntime"]
    ((candidate, reason),) = es.rejected
    assert candidate == Candidate("tflite", "fp32")
    assert reason.kind is RejectionKind.LOAD_FAILED and not reason.kind.benign
    assert str(reason) == "failed to load eyestate_fp32.tflite: RuntimeError: tflite exploded on eyestate_fp32.tflite"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert es.predict(synthetic_eye(True, 40)).label in ("open", "closed")


def test_explicit_backend_that_fails_to_load_raises(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    break_loading(monkeypatch, "openvino")
    message = "openvino fp16 cannot run here: failed to load.*exploded"
    with pytest.raises(BackendUnavailableError, match=message) as info:
        eyesdk.EyeState(model=tiny_bundle, backend="openvino", precision="fp16")
    assert isinstance(info.value.__cause__, BackendUnavailableError)
    assert isinstance(info.value.__cause__.__cause__, RuntimeError)  # the original error stays attached


def test_explicit_backend_missing_raises_before_loading_anything(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "onnxruntime")
    loaded = break_loading(monkeypatch)
    with pytest.raises(BackendUnavailableError, match=r"'onnxruntime' was requested but is not installed; pip install"):
        eyesdk.EyeState(model=tiny_bundle, backend="onnxruntime")
    assert loaded == []


def test_explicit_backend_auto_precision_walks_its_precisions(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path / "b")
    drop_artifacts(bundle, ("openvino", "fp32"))
    es = eyesdk.EyeState(model=bundle, backend="openvino")
    assert (es.backend, es.precision) == ("openvino", "fp16")
    assert es.rejected[0][1].kind is RejectionKind.NOT_IN_BUNDLE and es.rejected[0][1].kind.benign
    assert str(es.rejected[0][1]).startswith("not in this bundle")


def test_explicit_pair_missing_from_the_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path / "b")
    drop_artifacts(bundle, ("tflite", "int8"))
    with pytest.raises(ArtifactNotFoundError, match=r"has no tflite int8 artifact \(it ships: onnx fp32, ") as info:
        eyesdk.EyeState(model=bundle, backend="tflite", precision="int8")
    assert isinstance(info.value, LookupError) and not isinstance(info.value, ImportError)


def test_nothing_available_lists_every_reason_and_the_extras(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide(monkeypatch, "onnxruntime", "tflite")
    break_loading(monkeypatch, "openvino")
    with pytest.raises(BackendUnavailableError) as info:
        eyesdk.EyeState(model=tiny_bundle)
    message = str(info.value)
    assert isinstance(info.value, ImportError)
    assert message.startswith("no backend can run bundle 'eyestate-tiny' here (backend='auto', precision='auto')")
    for backend, precision in X86_ORDER:
        assert f"  - {backend} {precision}: " in message
    assert "openvino fp32: failed to load eyestate_fp32.xml: RuntimeError" in message
    assert "install a runtime: pip install 'eyesdk[onnx]', pip install 'eyesdk[tflite]'" in message
    assert "'eyesdk[runtime]'" in message


def test_precision_filter_with_nothing_left(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "onnxruntime", "tflite", "openvino")
    with pytest.raises(BackendUnavailableError, match=r"(?s)precision='int8'.*onnxruntime int8: not installed"):
        eyesdk.EyeState(model=tiny_bundle, precision="int8")


def test_numbers_off_on_this_device_reject_the_candidate(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path / "b")
    manifest = read_manifest(bundle)
    for artifact in manifest["artifacts"]:
        if (artifact["format"], artifact["precision"]) == ("tflite", "fp32"):
            artifact["reference_logits"] = [v + 1.0 for v in artifact["reference_logits"]]
    write_manifest(bundle, manifest)
    es = eyesdk.EyeState(model=bundle)
    assert (es.backend, es.precision) == ("onnxruntime", "fp32")
    assert es.rejected[0][1].kind is RejectionKind.NUMBERS_OFF
    assert "differ from the bundle's reference by 1 > tolerance" in str(es.rejected[0][1])
    with pytest.raises(BackendUnavailableError, match="tflite fp32 cannot run here: .* differ from the bundle's"):
        eyesdk.EyeState(model=bundle, backend="tflite", precision="fp32")


def test_parity_is_skipped_without_reference(tiny_bundle: Path) -> None:
    b = load_bundle(tiny_bundle)
    runner = SimpleNamespace(run=lambda x: None)
    assert selection.parity_error({"reference_logits": []}, runner, b.probe()) is None
    assert selection.parity_error({"reference_logits": [0.0]}, runner, None) is None
    assert "1 values for 64 probe inputs" in selection.parity_error({"reference_logits": [0.0]}, runner, b.probe())


def test_unknown_names_are_value_errors() -> None:
    with pytest.raises(ValueError, match="unknown backend 'coreml'; choose one of onnxruntime, openvino, tflite or"):
        selection.candidates(backend="coreml")
    with pytest.raises(ValueError, match="unknown precision 'bf16'"):
        selection.candidates(precision="bf16")


def test_load_backend_of_a_missing_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "_module_exists", lambda module: False)
    assert backends.available_backends() == []
    message = r"backend 'tflite' is not installed; pip install 'eyesdk\[tflite\]'"
    with pytest.raises(BackendUnavailableError, match=message):
        backends.load_backend("tflite")


def test_tflite_falls_back_to_tflite_runtime_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "_module_exists", lambda module: module == "tflite_runtime")
    assert backends.available_backends() == ["tflite"]


def test_backend_versions_come_from_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first installed distribution of the format table's list names the version; none installed is None."""
    from importlib import metadata

    installed = {"tflite-runtime": "2.14.0", "onnxruntime-gpu": "1.20.1"}

    def version(dist: str) -> str:
        if dist not in installed:
            raise metadata.PackageNotFoundError(dist)
        return installed[dist]

    with monkeypatch.context() as patched:
        patched.setattr(metadata, "version", version)
        assert backends.backend_version("tflite") == "tflite-runtime 2.14.0"  # ai-edge-litert is tried first
        assert backends.backend_version("onnxruntime") == "onnxruntime-gpu 1.20.1"
        assert backends.backend_version("openvino") is None
    for name in backends.available_backends():  # and the real metadata of whatever is installed here
        dist, number = backends.backend_version(name).split(" ")
        assert dist in format_of_backend(name).distributions and number[0].isdigit()
