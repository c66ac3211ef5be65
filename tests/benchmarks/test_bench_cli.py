"""``eyesdk-bench`` end to end on the tiny bundle: JSON schema, gates and exit codes, reports, no torch import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from runtime_helpers import copy_bundle, read_manifest, write_manifest

from eyesdk.benchmarks import schema
from eyesdk.benchmarks.cli import main
from eyesdk.benchmarks.gates import EXIT_GATES_FAILED
from eyesdk.formats import FORMATS, PRECISIONS

FAST = ("--runs", "20", "--quiet")


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def full_run(tiny_bundle: Path, labelled_csv: Path, omz_like_onnx: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """One run over all nine artifacts with data, a peer, --json and --report (shared by the checks below)."""
    out = tmp_path_factory.mktemp("bench-full")
    result = invoke("--model", tiny_bundle, "--data", labelled_csv, "--peer", f"omz-open-closed-eye:{omz_like_onnx}",
                    "--json", out / "bench.json", "--report", out / "report", "--max-drift", "100", *FAST)
    return result, out


def test_full_run_writes_a_valid_document(full_run: tuple[Result, Path], tiny_bundle: Path) -> None:
    result, out = full_run
    assert result.exit_code == 0, result.output
    document = json.loads((out / "bench.json").read_text())
    schema.validate(document)
    assert document["schema"] == "eyesdk.bench/1" and document["data"]["n"] == 24
    shipped = {(a["format"], a["precision"]) for a in read_manifest(tiny_bundle)["artifacts"]}
    expected = [(f.backend, p) for f in FORMATS.values() for p in PRECISIONS if (f.name, p) in shipped]
    assert [(r["backend"], r["precision"]) for r in document["results"]] == expected  # the format table's order
    for entry in document["results"]:
        assert entry["error"] is None and entry["parity"]["ok"] is True
        assert set(entry["throughput_per_s"]) == {"1", "8", "64"} and entry["throughput_per_s"]["64"] > 0
        assert 0 < entry["latency_us"]["p50"] <= entry["latency_us"]["p99"]
        assert entry["accuracy"]["acc"] is not None and entry["calibration"]["ece"] is not None
        assert entry["drift"]["reference"] == f"{entry['backend']} fp32"
        assert {r["slice"] for r in entry["breakdown"]} == {"glasses=no", "glasses=yes"}
    assert min(r["ratios"]["p50_vs_fastest"] for r in document["results"]) == pytest.approx(1.0)
    (peer,) = document["peers"]
    assert peer["error"] is None and peer["latency_run_us"]["p50"] > 0 and peer["accuracy"]["acc"] is not None
    assert document["gates"] == {"max_drift_pp": 100.0, "max_ece": None, "max_p50_us": None, "ok": True,
                                 "failures": []}
    assert document["command"].startswith("eyesdk-bench --model")


def test_full_run_prints_tables_with_ratios(full_run: tuple[Result, Path]) -> None:
    output = full_run[0].output
    assert "x fastest" in output and "x peer" in output and "session.run only" in output
    assert "Δacc pp" in output and "peer omz-open-closed-eye (onnx)" in output


def test_report_is_self_contained(full_run: tuple[Result, Path]) -> None:
    report = full_run[1] / "report"
    page = (report / "report.html").read_text()
    assert not re.search(r"https?://", page), "the HTML report must not reference the web"
    assert "<script" not in page and "<link" not in page
    assert page.count("<svg") == 3  # latency, reliability diagrams, score histograms
    assert "| onnxruntime fp32 |" in (report / "report.md").read_text()
    schema.validate(json.loads((report / "bench.json").read_text()))


def test_p50_gate_exits_3_naming_each_artifact(tiny_bundle: Path) -> None:
    result = invoke("--model", tiny_bundle, "--backends", "onnxruntime", "--precisions", "fp32,int8",
                    "--max-p50-us", "0.001", *FAST)
    assert result.exit_code == EXIT_GATES_FAILED
    assert re.search(r"GATE FAILED max_p50_us: onnxruntime fp32 \(eyestate_fp32.onnx\): p50 latency .* exceeds "
                     r"--max-p50-us 0.001", result.output)
    assert "onnxruntime int8 (eyestate_int8.onnx)" in result.output


def test_ece_gate_exits_3(tiny_bundle: Path, labelled_csv: Path, tmp_path: Path) -> None:
    result = invoke("--model", tiny_bundle, "--backends", "tflite", "--precisions", "fp32", "--data", labelled_csv,
                    "--max-ece", "0", "--json", tmp_path / "b.json", *FAST)
    assert result.exit_code == EXIT_GATES_FAILED
    assert "GATE FAILED max_ece: tflite fp32 (eyestate_fp32.tflite): ECE" in result.output
    failures = json.loads((tmp_path / "b.json").read_text())["gates"]["failures"]
    assert [(f["artifact"], f["gate"]) for f in failures] == [("tflite fp32", "max_ece")]


def test_parity_failure_is_a_gate(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path / "bundle")
    manifest = read_manifest(bundle)
    for artifact in manifest["artifacts"]:
        if (artifact["format"], artifact["precision"]) == ("onnx", "int8"):
            artifact["reference_logits"] = [v + 1.0 for v in artifact["reference_logits"]]
    write_manifest(bundle, manifest)
    result = invoke("--model", bundle, "--backends", "onnxruntime", "--json", tmp_path / "b.json", *FAST)
    assert result.exit_code == EXIT_GATES_FAILED
    assert re.search(r"GATE FAILED parity: onnxruntime int8 .*max \|Δlogit\| on the probe 1 > tolerance", result.output)
    document = json.loads((tmp_path / "b.json").read_text())
    int8 = next(r for r in document["results"] if r["precision"] == "int8")
    assert int8["parity"]["ok"] is False and int8["latency_us"] is None and "EyeState refused it" in int8["error"]


def test_thread_sweep_gives_one_entry_per_thread_count(tiny_bundle: Path, tmp_path: Path) -> None:
    result = invoke("--model", tiny_bundle, "--backends", "onnxruntime", "--precisions", "fp32", "--threads", "1,2",
                    "--json", tmp_path / "b.json", *FAST)
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "b.json").read_text())
    assert [r["threads"] for r in document["results"]] == [1, 2]
    assert "onnxruntime fp32 t2" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-drift", "0.5"), r"--max-drift need --data"),
        (("--max-ece", "0.1", "--quick", "--data", "."), r"--max-ece need --data \(--quick skips data\)"),
        (("--backends", "tensorrt"), r"unknown backend tensorrt; choose from onnxruntime, openvino, tflite"),
        (("--threads", "0"), r"thread counts must be integers >= 1"),
        (("--threads", "one"), r"is not a comma list of thread counts"),
        (("--subjects-from", "folds.json:0"), r"--subjects-from filters --data"),
        (("--backends", "onnxruntime", "--precisions", "fp16", "--model"), r"has no artifact matching"),
    ],
)
def test_usage_errors_exit_2(tiny_bundle: Path, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    bundle = tiny_bundle
    if args[-1] == "--model":  # a bundle that ships only onnx fp32, asked for onnx fp16
        bundle = copy_bundle(tiny_bundle, tmp_path / "bundle")
        manifest = read_manifest(bundle)
        manifest["artifacts"] = [a for a in manifest["artifacts"] if (a["format"], a["precision"]) == ("onnx",
                                                                                                       "fp32")]
        write_manifest(bundle, manifest)
        args = args[:-1]
    result = invoke("--model", bundle, *args, *FAST)
    assert result.exit_code == 2
    assert re.search(message, result.output), result.output


def test_bad_peer_and_bad_folds_are_reported(tiny_bundle: Path, labelled_csv: Path, tmp_path: Path) -> None:
    result = invoke("--model", tiny_bundle, "--peer", f"nope:{tmp_path}", *FAST)
    assert result.exit_code == 1 and "unknown peer 'nope'" in result.output
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00garbage")
    result = invoke("--model", tiny_bundle, "--backends", "tflite", "--precisions", "fp32", "--peer",
                    f"omz-open-closed-eye:{broken}", *FAST)
    assert result.exit_code == 1 and "broken.onnx: onnxruntime cannot load it" in result.output
    result = invoke("--model", tiny_bundle, "--data", labelled_csv, "--subjects-from", f"{tmp_path / 'f.json'}:0",
                    *FAST)
    assert result.exit_code == 1 and "folds file" in result.output and "does not exist" in result.output


def test_subjects_from_keeps_one_fold(tiny_bundle: Path, labelled_csv: Path, tmp_path: Path) -> None:
    folds = tmp_path / "folds.json"
    subjects = {f"csv:p{i}": i % 2 for i in range(6)}
    folds.write_text(json.dumps({"format": "eyesdk-folds/1", "folds": 2, "subjects": subjects}))
    result = invoke("--model", tiny_bundle, "--backends", "onnxruntime", "--precisions", "fp32", "--data",
                    labelled_csv, "--subjects-from", f"{folds}:1", "--json", tmp_path / "b.json", *FAST)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "b.json").read_text())["data"]
    assert data["n"] == 12 and data["subjects_from"] == f"{folds}:1"  # subjects p1, p3, p5: 4 images each
    result = invoke("--model", tiny_bundle, "--data", labelled_csv, "--subjects-from", f"{folds}:7", *FAST)
    assert result.exit_code == 1 and "fold(s) [7] not present" in result.output


def test_missing_default_bundle_says_to_pass_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk import bundle as bundle_module

    monkeypatch.setattr(bundle_module, "default_bundle_path", lambda: tmp_path / "default")
    result = invoke("--quick")
    assert result.exit_code == 2
    assert "no embedded default bundle" in result.output and "--model path/to/bundle" in result.output


_NO_TORCH_DRIVER = """
import sys
from eyesdk.benchmarks.cli import main
try:
    main(sys.argv[1:], prog_name="eyesdk-bench")
except SystemExit as exc:
    code = exc.code or 0
print("TORCH-IMPORTED" if "torch" in sys.modules else "TORCH-FREE", code)
"""


@pytest.mark.parametrize("mode", ["quick", "data"])
def test_bench_never_imports_torch(mode: str, tiny_bundle: Path, labelled_csv: Path, omz_like_onnx: Path) -> None:
    args = ["--model", str(tiny_bundle), "--quiet"]
    if mode == "quick":
        args.append("--quick")
    else:  # the data path: converters' readers and loader, the peer, the report
        args += ["--runs", "5", "--backends", "onnxruntime", "--data", str(labelled_csv),
                 "--peer", f"omz-open-closed-eye:{omz_like_onnx}"]
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH_DRIVER, *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "TORCH-FREE 0", proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------------ subcommands


def test_help_lists_every_registered_subcommand_and_each_has_help() -> None:
    from eyesdk.benchmarks.cli import SUBCOMMANDS

    listing = invoke("--help").output
    assert "Usage: main [OPTIONS] [COMMAND [ARGS]...]" in listing and "--runs" in listing
    for name in SUBCOMMANDS:
        assert re.search(rf"^  {re.escape(name)} ", listing, re.MULTILINE), name
        result = invoke(name, "--help")
        assert result.exit_code == 0 and f"Usage: main {name} [OPTIONS]" in result.output, result.output


def test_registering_a_subcommand_is_one_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk.benchmarks import cli

    (tmp_path / "my_bench_plugin.py").write_text(
        "import click\n\n@click.command()\n@click.option('--n', default=1)\n"
        "def command(n):\n    '''A plugged-in measurement.'''\n    click.echo(f'plugged {n}')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.SUBCOMMANDS, "plugged", "my_bench_plugin:command")
    assert invoke("plugged", "--n", "3").output == "plugged 3\n"
    assert "plugged  " in invoke("--help").output and "A plugged-in measurement." in invoke("--help").output
    monkeypatch.setitem(cli.SUBCOMMANDS, "broken", "my_bench_plugin:click")
    with pytest.raises(TypeError, match="subcommand 'broken': my_bench_plugin:click is not a click command"):
        main.main(["broken"], standalone_mode=False)


def test_matrix_options_before_a_subcommand_are_refused(tiny_bundle: Path) -> None:
    with pytest.raises(click.UsageError, match=r"--model, --runs before 'throughput' belong to the matrix run; put "
                                               r"the subcommand's options after it"):
        main.main(["--model", str(tiny_bundle), "--runs", "5", "throughput"], standalone_mode=False)
    assert "No such command 'nope'" in invoke("nope").output


_LAZY_DRIVER = """
import sys
from click.testing import CliRunner
from eyesdk.benchmarks.cli import SUBCOMMANDS, main
CliRunner().invoke(main, ["throughput", "--help"])
loaded = sorted(n for n, target in SUBCOMMANDS.items() if target.partition(":")[0] in sys.modules)
print(",".join(loaded))
"""


def test_subcommands_are_imported_only_when_used() -> None:
    proc = subprocess.run([sys.executable, "-c", _LAZY_DRIVER], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "throughput", proc.stdout + proc.stderr
