"""scripts/arm64-smoke and its in-root checker, without the emulation (that runs from .ci/run).

The shell script is checked for syntax (and by shellcheck where installed); the checker's comparison, its report
lines and its whole ``parity`` command run on the host against the tiny bundle, with the device made to look ARM;
the stream check's host half writes its reference, its root half replays it here against itself, and perturbed
copies must fail with lines that name what moved.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import math
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


def test_smoke_script_writes_the_stream_reference_on_the_host_and_replays_it_on_every_cpu():
    text = SMOKE.read_text()
    assert '"$HOST_PY" scripts/arm64_check.py stream-reference "$WORK/stream"' in text
    assert text.count('stream_check "$VENV"') == 2  # the first CPU, then inside the loop over the others
    assert 'check "stream-$QEMU_MODEL" "$1" stream "$WORK_IN/stream"' in text


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


# ------------------------------------------------------------------------------------------------ stream parity


@pytest.fixture(scope="module")
def stream_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The host half, written once: the crop half always, the locator half when scripts/test fetched the models."""
    from face_paths import LOCATOR_MODELS

    out = tmp_path_factory.mktemp("stream")
    with capture_stdout() as text:
        assert check.main(["stream-reference", str(out), "--locator-models", str(LOCATOR_MODELS)]) == 0
    return out, text.getvalue()


@contextlib.contextmanager
def capture_stdout():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


def _reference(folder: Path) -> dict:
    return json.loads((folder / check.STREAM_REFERENCE).read_text())


def _perturbed_copy(folder: Path, tmp_path: Path, change) -> Path:
    copy = tmp_path / "perturbed"
    shutil.copytree(folder, copy)
    document = _reference(copy)
    change(document)
    (copy / check.STREAM_REFERENCE).write_text(json.dumps(document))
    return copy


def test_stream_timeline_has_jitter_drops_a_gap_and_one_eyed_stretches():
    timeline = check.stream_timeline()
    times = np.array([t for t, _, _ in timeline])
    steps = np.diff(times)
    assert (steps > 0).all()
    assert steps.max() > 1.0  # the gap: longer than EventConfig.max_gap
    assert ((steps > 1.5 / check.STREAM_FPS) & (steps < 0.5)).any()  # dropped frames
    assert len(set(np.round(steps[steps < 1.5 / check.STREAM_FPS], 6))) > 10  # jittered, not a fixed rate
    pairs = [(left is None, right is None) for _, left, right in timeline]
    assert {(True, True), (False, True), (False, False)} <= set(pairs)
    assert check.stream_timeline() == timeline and check.stream_timeline(1) != timeline


def test_shifted_clip_moves_the_frame_by_whole_pixels():
    frame = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    clip = check.shifted_clip(frame, count=3, step=(3, 2))
    assert [f.shape for f in clip] == [frame.shape] * 3 and np.array_equal(clip[0], frame)
    assert np.array_equal(clip[2][4:, 6:], frame[:-4, :-6])
    assert np.array_equal(clip[2][:4, 6:], np.broadcast_to(frame[0, :-6], (4, 24, 3)))  # edge repeated


def test_stream_scenario_covers_every_kind_of_closure_alarm_and_unknown(stream_reference):
    folder, _ = stream_reference
    document = _reference(folder)
    assert document["schema"] == check.STREAM_SCHEMA
    for backend, run in document["crops"].items():
        updates = run["updates"]
        assert len(updates) == len(document["timeline"]) > 300, backend
        kinds = [e[0] for u in updates for e in u["events"]]
        assert {"blink", "long_blink", "microsleep"} <= set(kinds), (backend, kinds)
        assert [e[4] for e in run["close"]] == [True], "the closure still going at the end is clipped"
        raised = {a[0] for u in updates for a in u["alarms"] if a[2]}
        assert raised == {"microsleep", "drowsy"}, backend
        assert {u["state"] for u in updates} == {"open", "closed", "unknown"}
        assert any(u["perclos"] is not None for u in updates)


def test_stream_reference_checked_against_itself_passes(stream_reference, capsys):
    folder, written = stream_reference
    assert written.startswith("arm64 stream reference (host): ")
    assert check.main(["stream", str(folder), "--prefix", "arm64 host"]) == 0
    out = capsys.readouterr().out
    updates = len(check.stream_timeline())
    for backend in backends.available_backends():
        line = next(line for line in out.splitlines() if line.startswith(f"arm64 host stream {backend}: "))
        assert f": match: crops {updates}/{updates} updates (5 events, 2 alarms raised: exact; max |dlogit| 0," in line
    if (folder / check.STREAM_MODELS).is_dir():
        assert "clip 5/5 frames (max |dprob_open| 0, tolerance 0.05; max box error 0 px, tolerance 2 px)" in out
        assert "arm64 host stream locator tflite: match: 4/4 eyes on 2 frames (max centre error 0 px" in out
    else:
        assert "arm64-smoke: NOTE: no landmark locator models on the host" in written
        assert "clip skipped (no locator reference)" in out and "arm64 host stream locator: skipped" in out
    assert re.search(r"^wall clock of this check's parts \(where CI time goes; not a speed\): imports [0-9.]+ s, ",
                     out, re.M)
    assert "FAILED" not in out


def test_a_perturbed_reference_fails_with_named_lines(stream_reference, tmp_path, monkeypatch, capsys):
    folder, _ = stream_reference
    monkeypatch.setattr(backends, "is_available", lambda b: b == "onnxruntime")  # one backend keeps it quick
    document = _reference(folder)
    run = document["crops"]["onnxruntime"]["updates"]
    moved = next(i for i, u in enumerate(run) if u["events"])
    off = next(i for i, u in enumerate(run) if u["eyes"]["left"]["logit"] is not None)

    def perturb(doc: dict) -> None:
        updates = doc["crops"]["onnxruntime"]["updates"]
        updates[moved]["events"][0][1] -= 0.1  # the event starts 0.1 s earlier
        eye = updates[off]["eyes"]["left"]
        eye["logit"] += 0.01  # 5x the fp32 artifact's tolerance
        eye["prob_open"] = 1 / (1 + math.exp(-eye["logit"]))
        del updates[-1]  # the reference lacks an update the replay has

    perturbed = _perturbed_copy(folder, tmp_path, perturb)
    args = ["stream", str(perturbed), "--prefix", "arm64 cortex-a72"]
    assert check.main(args) == 1
    out = capsys.readouterr().out
    kind, start, end = run[moved]["events"][0][:3]
    t = run[moved]["t"]
    assert f"arm64 cortex-a72 stream onnxruntime: MISMATCH: crops {len(run) - 3}/{len(run) - 1} updates" in out
    assert (f"    update {moved} (t={t:.3f}): events {kind} {start:.3f}-{end:.3f}, reference {kind} "
            f"{start - 0.1:.3f}-{end:.3f}") in out
    assert re.search(rf"    update {off} \(t=[0-9.]+\) left: prob_open [0-9.]+, reference [0-9.]+ \(\|dlogit\| "
                     r"0\.01[0-9]*, \|dprob_open\| [0-9.e-]+; tolerance \|dlogit\| 0\.00[0-9]+\)", out)
    assert f"    1 updates more than the reference's {len(run) - 1}" in out
    assert "arm64 cortex-a72 FAILED: stream onnxruntime: the replay differs from the host's" in out
    assert check.main([*args, "--known-failure", "stream onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert f"    KNOWN FAILURE: update {moved} (t={t:.3f}): events" in out and "FAILED" not in out


def test_a_known_stream_failure_that_matches_now_is_pointed_out(stream_reference, monkeypatch, capsys):
    folder, _ = stream_reference
    monkeypatch.setattr(backends, "is_available", lambda b: b == "onnxruntime")
    assert check.main(["stream", str(folder), "--known-failure", "stream onnxruntime"]) == 0
    assert "    listed as a known failure but matches now; drop it from the list" in capsys.readouterr().out


def test_the_stream_check_refuses_another_bundle_or_schema(stream_reference, tmp_path, capsys):
    folder, _ = stream_reference
    other = _perturbed_copy(folder, tmp_path, lambda doc: doc.update(bundle="0" * 64))
    assert check.main(["stream", str(other)]) == 1
    assert re.search(r"arm64 FAILED: the host's reference is for bundle 000000000000, this root has [0-9a-f]{12}",
                     capsys.readouterr().out)
    (other / check.STREAM_REFERENCE).write_text(json.dumps({"schema": "something/1"}))
    assert check.main(["stream", str(other)]) == 1
    assert f"is not an {check.STREAM_SCHEMA} document" in capsys.readouterr().out


def _stream_run(states: list[str]) -> dict:
    eye = {"valid": True, "reason": None, "logit": 2.0, "prob_open": 0.8808, "box": [10, 10, 20, 20]}
    updates = [{"t": i / 30, "state": s, "events": [], "alarms": [], "perclos": None, "blinks_per_minute": None,
                "eyes": {"left": dict(eye), "right": {**eye, "valid": False, "reason": "no_eye", "logit": None,
                                                      "prob_open": None, "box": None}}}
               for i, s in enumerate(states)]
    updates[2]["events"] = [["blink", 1 / 30, 2 / 30, None, False]]
    updates[2]["alarms"] = [["microsleep", 1 / 30, True]]
    return {"updates": updates, "close": [["blink", 3 / 30, 0.2, None, True]]}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (lambda r: r["updates"].pop(), r"^update 3 \(t=0\.100\): missing from the replay$"),
        (lambda r: r["updates"][1].update(state="open"), r"^update 1 \(t=0\.033\): state open, reference closed$"),
        (lambda r: r["updates"][2]["events"][0].__setitem__(2, 0.1),
         r"^update 2 \(t=0\.067\): events blink 0\.033-0\.100, reference blink 0\.033-0\.067$"),
        (lambda r: r["updates"][2].update(alarms=[]),
         r"^update 2 \(t=0\.067\): alarms \[\], reference \[\['microsleep', 0\.0333\d*, True\]\]$"),
        (lambda r: r["updates"][0].update(perclos=0.1), r"^update 0 \(t=0\.000\): perclos 0\.1, reference None$"),
        (lambda r: r["updates"][0]["eyes"]["left"].update(logit=2.1, prob_open=0.8909),
         r"^update 0 \(t=0\.000\) left: prob_open 0\.890900, reference 0\.880800 \(\|dlogit\| 0\.1"),
        (lambda r: r["updates"][0]["eyes"]["left"].update(valid=False, reason="blurred", logit=None),
         r"^update 0 \(t=0\.000\) left: valid False \(blurred\), reference True \(None\)$"),
        (lambda r: r["updates"][0]["eyes"]["left"].update(box=[12, 10, 20, 20]),
         r"^update 0 \(t=0\.000\) left: box \[12, 10, 20, 20\], reference \[10, 10, 20, 20\] \(> 1 px\)$"),
        (lambda r: r["updates"][0]["eyes"].pop("right"), r"^update 0 \(t=0\.000\): eyes \['left'\], reference"),
        (lambda r: r.update(close=[]), r"^close\(\): events none, reference blink 0\.100-0\.200 clipped$"),
    ],
)
def test_compare_stream_names_what_differs(change, line):
    reference = _stream_run(["open", "closed", "open", "closed"])
    assert check.compare_stream(reference, copy.deepcopy(reference), check.Tolerance(logit=1e-3)).ok
    got = copy.deepcopy(reference)
    change(got)
    diff = check.compare_stream(reference, got, check.Tolerance(logit=0.05))
    assert not diff.ok and len(diff.problems) == 1, diff.problems
    assert re.search(line, diff.problems[0]), diff.problems[0]
    assert diff.updates == 4 and diff.events == 2 and diff.alarms == 1


def test_compare_stream_holds_the_clip_to_prob_open_and_boxes_and_logits_to_raw_units():
    reference = _stream_run(["open"] * 4)
    got = copy.deepcopy(reference)
    got["updates"][0]["eyes"]["left"].update(logit=2.5, prob_open=0.9241)
    clip = check.compare_stream(reference, got, check.Tolerance(prob=check.CLIP_PROB_TOLERANCE))
    assert clip.ok and clip.max_dprob == pytest.approx(0.0433) and clip.max_dlogit == pytest.approx(0.5)
    assert not check.compare_stream(reference, got, check.Tolerance(prob=0.04)).ok
    # a calibrated logit 0.5 apart at temperature 0.002 is 0.001 raw: within a 0.0018 tolerance
    assert check.compare_stream(reference, got, check.Tolerance(logit=0.0018, temperature=0.002)).ok
    assert not check.compare_stream(reference, got, check.Tolerance(logit=0.0018, temperature=1.0)).ok
    got["updates"][1]["eyes"]["left"]["box"] = [12, 8, 20, 20]
    assert check.compare_stream(reference, got, check.Tolerance(box=check.CLIP_BOX_TOLERANCE_PX)).ok
    assert not check.compare_stream(reference, got, check.Tolerance()).ok  # single frames: 1 px


def _eyes(dx: float = 0.0) -> list[list[dict]]:
    return [[{"side": "left", "center": [100.0 + dx, 80.0], "width": 20.0, "angle": 0.1, "box": [75, 55, 50, 50]},
             {"side": "right", "center": [160.0, 80.0], "width": 20.0, "angle": 0.1, "box": [135, 55, 50, 50]}]]


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (lambda f: f[0][0]["center"].__setitem__(0, 100.6), r"^frame 0 left eye: centre 0\.6 px from the reference"),
        (lambda f: f[0][1].update(width=20.7), r"^frame 0 right eye: width 20\.70, reference 20\.00 px$"),
        (lambda f: f[0][0].update(angle=0.12), r"^frame 0 left eye: roll 0\.1200, reference 0\.1000 rad$"),
        (lambda f: f[0][0].update(box=[73, 55, 50, 50]), r"^frame 0 left eye: box \[73, 55, 50, 50\], reference"),
        (lambda f: f[0].pop(), r"^frame 0: eyes \['left'\], reference \['left', 'right'\]$"),
        (lambda f: f.append([]), r"^2 frames located, reference 1$"),
    ],
)
def test_compare_locations_names_what_differs(change, line):
    assert check.compare_locations(_eyes(), _eyes(0.3)).ok  # within LOCATOR_TOLERANCE_PX
    got = _eyes()
    change(got)
    diff = check.compare_locations(_eyes(), got)
    assert not diff.ok and re.search(line, diff.problems[0]), diff.problems


def test_locator_lines_report_the_worst_error_and_mark_known_failures():
    got = _eyes(0.6)
    diff = check.compare_locations(_eyes(), got)
    lines, ok = check.locator_lines("openvino", diff, "arm64 cortex-a72")
    assert not ok and lines == [
        "arm64 cortex-a72 stream locator openvino: MISMATCH: 1/2 eyes on 1 frames (max centre error 0.6 px, "
        "tolerance 0.5 px; max box error 0 px)",
        "    frame 0 left eye: centre 0.6 px from the reference (> 0.5 px)",
    ]
    lines, ok = check.locator_lines("openvino", diff, known=True)
    assert ok and lines[1].startswith("    KNOWN FAILURE: frame 0 left eye")


def test_stream_lines_show_only_the_first_problems():
    diff = check.StreamDiff(updates=10, matched=0, problems=[f"update {i}: state" for i in range(10)])
    lines, ok = check.stream_backend_lines("tflite", diff, None, 0.0018)
    assert not ok and len(lines) == 1 + check.SHOWN_PROBLEMS + 1
    assert lines[0].startswith("arm64 stream tflite: MISMATCH: crops 0/10 updates")
    assert lines[0].endswith("; clip skipped (no locator reference)")
    assert lines[-1] == f"    ... and {10 - check.SHOWN_PROBLEMS} more"


def test_stream_reference_without_locator_models_notes_the_skip(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(check, "find_locator_models", lambda candidates: None)
    monkeypatch.setattr(backends, "is_available", lambda b: b == "onnxruntime")
    assert check.main(["stream-reference", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "arm64-smoke: NOTE: no landmark locator models on the host (eyesdk models fetch-locator): the stream " \
           "check's locator half is skipped; the crop half runs" in out
    assert out.splitlines()[-1].endswith("on onnxruntime; locator half skipped")
    assert _reference(tmp_path)["locator"] is None and not (tmp_path / check.STREAM_MODELS).exists()
    assert check.main(["stream", str(tmp_path)]) == 0
    assert "arm64 stream locator: skipped (the host wrote no locator reference)" in capsys.readouterr().out
