"""scripts/arm64-smoke and its in-root checker, without the emulation (that runs from .ci/run).

The shell script is checked for syntax (and by shellcheck where installed); the checker's comparison, its report
lines and its whole ``parity`` command run on the host against the tiny bundle, with the device made to look ARM.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import copy_bundle, drop_artifacts, read_manifest

from eyesdk import backends, device
from eyesdk.bundle import load_bundle
from eyesdk.device import DeviceInfo
from eyesdk.selection import ARM_ORDER

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SMOKE = SCRIPTS / "arm64-smoke"


def _load_checker():
    spec = importlib.util.spec_from_file_location("arm64_check", SCRIPTS / "arm64_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["arm64_check"] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


check = _load_checker()


def _fake_pi(monkeypatch: pytest.MonkeyPatch) -> None:
    pi = DeviceInfo("aarch64", "Linux", "6.6", "Raspberry Pi 4 Model B Rev 1.2", ("asimd", "fp"), 4, "3.11")
    monkeypatch.setattr(device, "probe", lambda: pi)


# ------------------------------------------------------------------------------------------------ the script


def test_smoke_script_is_executable_bash_with_valid_syntax():
    assert os.access(SMOKE, os.X_OK)
    result = subprocess.run(["bash", "-n", str(SMOKE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_smoke_script_passes_shellcheck():
    result = subprocess.run(["shellcheck", "-S", "warning", str(SMOKE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_smoke_script_unmounts_on_every_exit_and_reads_no_emulated_timings():
    text = SMOKE.read_text()
    assert "trap cleanup EXIT" in text
    assert '${EYESDK_ARM64_CPUS:-cortex-a72 cortex-a76}' in text and 'QEMU_CPU="$QEMU_MODEL"' in text
    assert "eyesdk-bench --quick" in text and "p50" not in text


# ------------------------------------------------------------------------------------------------ comparison


def test_compare_logits_accepts_differences_up_to_the_tolerance():
    reference = [1.0, -2.0, 0.5]
    exact = check.compare_logits(reference, np.array(reference, np.float32), 1e-3)
    assert exact.ok and exact.max_abs_diff == 0.0
    close = check.compare_logits(reference, [1.0009, -2.0, 0.5], 1e-3)
    assert close.ok and close.max_abs_diff == pytest.approx(9e-4)


@pytest.mark.parametrize(
    ("got", "reason"),
    [
        ([1.0, -2.0, 0.6], r"\|dlogit\| 0.1 > tolerance 0.001"),
        ([1.0, -2.0], r"2 logits for 3 reference values"),
        ([1.0, np.nan, 0.5], r"non-finite logits"),
        ([1.0, np.inf, 0.5], r"non-finite logits"),
    ],
)
def test_compare_logits_rejects_far_missing_or_non_finite_logits(got, reason):
    result = check.compare_logits([1.0, -2.0, 0.5], got, 1e-3)
    assert not result.ok
    assert re.search(reason, result.reason)


def test_compare_logits_rejects_an_empty_reference():
    assert check.compare_logits([], [], 1.0).reason == "the manifest has no reference logits"


def test_compare_artifact_uses_each_manifest_entry_tolerance(tiny_bundle: Path):
    probe = np.load(tiny_bundle / "probe.npy")
    for artifact in read_manifest(tiny_bundle)["artifacts"]:
        reference = np.asarray(artifact["reference_logits"], np.float64)
        assert reference.shape == (probe.shape[0],)
        tolerance = artifact["tolerance"]
        assert check.compare_artifact(artifact, reference + 0.5 * tolerance).ok
        far = check.compare_artifact(artifact, reference + 1.01 * tolerance)
        assert not far.ok and far.tolerance == tolerance
    assert not check.compare_artifact({"tolerance": 1.0}, [0.0]).ok


def test_check_backend_reproduces_the_reference_on_the_host(tiny_bundle: Path):
    bundle = load_bundle(tiny_bundle)
    for backend in backends.available_backends():
        report = check.check_backend(bundle, backend)
        assert report.ok, report.summary()
        assert report.matched == 3
        (line,) = report.summary()
        assert line.startswith(f"arm64 {backend}: 3/3 artifacts match reference (max |dlogit| ")
        assert re.search(r" on (onnx|openvino|tflite) (fp32|fp16|int8)\)$", line)


def test_backend_report_names_each_mismatch():
    report = check.BackendReport("onnxruntime", True, {
        "onnx fp32": check.Comparison(True, 1e-7, 1e-3),
        "onnx int8": check.Comparison(False, 2.0, 1.5, "|dlogit| 2 > tolerance 1.5"),
    })
    assert not report.ok
    assert report.summary() == [
        "arm64 onnxruntime: 1/2 artifacts MISMATCH (max |dlogit| 2 on onnx int8)",
        "    onnx int8: |dlogit| 2 > tolerance 1.5",
    ]
    assert check.BackendReport("openvino", False).summary() == ["arm64 openvino: not installed"]
    assert not check.BackendReport("tflite", True).ok  # nothing ran is not a pass


def test_known_failures_are_reported_but_not_fatal_and_a_fixed_one_is_pointed_out():
    failing = check.Comparison(False, None, 0.0, "failed: RuntimeError: Convolution node is not initialized")
    passing = check.Comparison(True, 1e-6, 1e-3)
    known = frozenset({"openvino int8"})
    report = check.BackendReport("openvino", True, {"openvino fp32": passing, "openvino int8": failing}, known)
    assert report.ok and report.known_failed == ["openvino int8"]
    assert report.summary("arm64 cortex-a72") == [
        "arm64 cortex-a72 openvino: 1/2 artifacts match (max |dlogit| 1e-06 on openvino fp32, 1 known failure)",
        "    openvino int8: KNOWN FAILURE: failed: RuntimeError: Convolution node is not initialized",
    ]
    fixed = check.BackendReport("openvino", True, {"openvino fp32": passing, "openvino int8": passing}, known)
    assert fixed.ok
    assert fixed.summary()[1] == "    openvino int8: listed as a known failure but matches now; drop it from the list"
    only_known = check.BackendReport("openvino", True, {"openvino int8": failing}, known)
    assert not only_known.ok  # a backend that ran nothing successfully is never a pass


def test_parity_command_tolerates_a_listed_known_failure(tiny_bundle: Path, tmp_path: Path, monkeypatch, capsys):
    _fake_pi(monkeypatch)
    broken = copy_bundle(tiny_bundle, tmp_path / "broken")
    manifest = read_manifest(broken)
    for artifact in manifest["artifacts"]:
        if (artifact["format"], artifact["precision"]) == ("onnx", "int8"):
            artifact["reference_logits"] = [v + 10.0 for v in artifact["reference_logits"]]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    args = ["parity", "--model", str(broken), "--prefix", "arm64 cortex-a72"]
    if "onnxruntime" not in backends.available_backends():
        pytest.skip("onnxruntime not installed")
    assert check.main(args) == 1
    assert "arm64 cortex-a72 onnxruntime: 2/3 artifacts MISMATCH" in capsys.readouterr().out
    assert check.main([*args, "--known-failure", "onnx int8"]) == 0
    out = capsys.readouterr().out
    assert "arm64 cortex-a72 onnxruntime: 2/3 artifacts match (" in out and "1 known failure" in out
    assert "    onnx int8: KNOWN FAILURE: |dlogit| 10 > tolerance" in out


# ------------------------------------------------------------------------------------------------ auto on ARM


def test_expected_auto_choice_follows_the_arm_order_over_what_is_installed(tmp_path: Path, tiny_bundle: Path):
    bundle = load_bundle(tiny_bundle)
    assert check.expected_auto_choice(bundle, ["onnxruntime", "openvino", "tflite"], ARM_ORDER) == ("tflite", "fp32")
    assert check.expected_auto_choice(bundle, ["openvino"], ARM_ORDER) == ("openvino", "fp32")
    assert check.expected_auto_choice(bundle, [], ARM_ORDER) is None
    partial = copy_bundle(tiny_bundle, tmp_path / "partial")
    drop_artifacts(partial, ("tflite", "fp32"), ("onnx", "fp32"))
    assert check.expected_auto_choice(load_bundle(partial), ["onnxruntime", "tflite"], ARM_ORDER) == ("tflite", "int8")


def test_parity_command_passes_on_a_pi_looking_host(tiny_bundle: Path, monkeypatch, capsys):
    _fake_pi(monkeypatch)
    installed = ",".join(backends.available_backends())
    assert check.main(["parity", "--model", str(tiny_bundle), "--expect", installed]) == 0
    out = capsys.readouterr().out
    assert "arm64 device: aarch64, Raspberry Pi 4 Model B Rev 1.2" in out
    assert "arm64 auto: tflite fp32" in out and "FAILED" not in out


def test_parity_command_fails_when_not_emulated_or_a_backend_is_missing(tiny_bundle: Path, monkeypatch, capsys):
    x86 = DeviceInfo("x86_64", "Linux", "6.1", "Intel", (), 2, "3.11")
    monkeypatch.setattr(device, "probe", lambda: x86)
    monkeypatch.setattr(backends, "is_available", lambda b: b == "tflite")
    assert check.main(["parity", "--model", str(tiny_bundle), "--expect", "tflite,onnxruntime"]) == 1
    out = capsys.readouterr().out
    assert "arm64 FAILED: eyesdk sees arch 'x86_64', not ARM" in out
    assert "arm64 FAILED: onnxruntime was installed from its aarch64 wheel but eyesdk cannot find it" in out
    assert "arm64 onnxruntime: not installed" in out


def test_tune_command_checks_that_auto_follows_the_cached_choice(tiny_bundle: Path, tmp_path, monkeypatch, capsys):
    from eyesdk import tune

    _fake_pi(monkeypatch)
    bundle = load_bundle(tiny_bundle)
    result = tune.tune(bundle, rounds=1, calls=2)
    out_json = tmp_path / "tune.json"
    out_json.write_text(json.dumps(result.to_dict()))
    assert check.main(["tune", str(out_json), "--model", str(tiny_bundle)]) == 0
    assert f"arm64 auto after tune: {result.backend} {result.precision}" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ other commands


def test_bench_parity_lines_report_verdicts_and_never_timings():
    document = {"results": [
        {"backend": "onnxruntime", "precision": "fp32", "parity": {"ok": True, "max_abs_diff": 0.0},
         "latency_us": {"p50": 12.0}},
        {"backend": "onnxruntime", "precision": "int8", "parity": {"ok": False, "max_abs_diff": 3.0}},
        {"backend": "tflite", "precision": "fp32", "parity": {"ok": None}, "error": "failed to load"},
    ]}
    lines, failures = check.bench_parity_lines(document)
    assert lines == ["arm64 eyesdk-bench --quick onnxruntime: parity ok for 1/2 artifacts",
                     "arm64 eyesdk-bench --quick tflite: parity ok for 0/1 artifacts"]
    assert failures == ["eyesdk-bench onnxruntime int8: parity False (|dlogit| 3.0)",
                        "eyesdk-bench tflite fp32: failed to load"]
    lines, failures = check.bench_parity_lines(document, known=["onnx int8"])
    assert lines[0] == "arm64 eyesdk-bench --quick onnxruntime: parity ok for 1/2 artifacts (1 known failure)"
    assert failures == ["eyesdk-bench tflite fp32: failed to load"]
    assert check.bench_parity_lines({"results": []})[1] == ["eyesdk-bench measured nothing"]


def test_crops_command_writes_readable_open_and_closed_pngs(tmp_path: Path, capsys):
    Image = pytest.importorskip("PIL.Image")
    assert check.main(["crops", str(tmp_path), "--count", "4"]) == 0
    files = sorted(tmp_path.glob("*.png"))
    assert [f.name for f in files] == ["closed_1.png", "closed_3.png", "open_0.png", "open_2.png"]
    with Image.open(files[0]) as image:
        assert image.mode == "L" and image.size == (72, 48)


def test_sizes_command_lists_numpy(capsys):
    assert check.main(["sizes", "--label", "host", "--min-mb", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("arm64 installed MB (host): total ") and "numpy " in out
