"""``eyesdk-bench throughput`` (benchmarks/throughput.py): crops/s per artifact x threads x batch, one run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from runtime_helpers import copy_bundle, drop_artifacts

from eyesdk.benchmarks import throughput
from eyesdk.benchmarks.cli import main
from eyesdk.benchmarks.gates import EXIT_GATES_FAILED

FAST = ("--crops", "64", "--batches", "8,32")


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, ["throughput", *map(str, args)], catch_exceptions=False)


def test_rates_for_every_artifact_and_thread_count(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "rates.json"
    result = invoke("--model", tiny_bundle, "--backends", "onnxruntime", "--threads", "1,2", "--json", out, *FAST)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["backend", "precision", "threads", "batch", "8", "batch", "32"]
    assert [line.split()[0] + line.split()[2] for line in lines[3:5]] == ["auto1", "auto2"]  # what users get first
    assert "(predict " in lines[3] and ", pipelined)" in lines[4]
    assert [line.split()[:3] for line in lines[5:11]] == [["onnxruntime", p, t] for p in ("fp32", "fp16", "int8")
                                                           for t in ("1", "2")]
    best = re.search(r"best at batch 32: (\w+ \w+ t\d) ([\d,]+) crops/s \(median call; its fastest call: "
                     r"[\d,]+ crops/s\)", result.output)
    assert "issue 11 target" not in result.output  # stated at batch 256, which this run did not measure
    assert best is not None
    document = json.loads(out.read_text())
    assert document["schema"] == throughput.SCHEMA and document["batches"] == [8, 32]
    rows = document["results"]
    assert len(rows) == 8 and all(r["error"] is None and r["rates"]["32"] > 0 for r in rows)
    assert [r["backend"] for r in rows[:2]] == ["auto", "auto"] and rows[1]["runs"].endswith("pipelined")
    assert all(r["best_rates"][b] >= r["rates"][b] for r in rows for b in ("8", "32"))  # fastest call >= median
    top = max(rows, key=lambda r: r["rates"]["32"])
    assert best.group(1) == throughput.row_name(top) and best.group(2) == f"{top['rates']['32']:,.0f}"
    assert document["command"].startswith("eyesdk-bench throughput --model")


def test_min_rate_is_a_gate(tiny_bundle: Path) -> None:
    args = ("--model", tiny_bundle, "--backends", "tflite", "--precisions", "fp32", "--threads", "1", *FAST)
    assert invoke(*args, "--min-rate", "1").exit_code == 0
    failed = invoke(*args, "--min-rate", "1e12")
    assert failed.exit_code == EXIT_GATES_FAILED
    assert re.search(r"GATE FAILED min_rate: best at batch 32 is [\d,]+ crops/s < --min-rate 1,000,000,000,000",
                     failed.output)


def test_the_issue_target_is_said_at_its_batch(tiny_bundle: Path) -> None:
    result = invoke("--model", tiny_bundle, "--backends", "onnxruntime", "--precisions", "fp32", "--threads", "1",
                    "--crops", "256", "--batches", "8,256")
    assert result.exit_code == 0, result.output
    assert re.search(r"issue 11 target >= 100,000 crops/s at batch 256: [\d.]+x of it \((met|not met); fastest "
                     r"call [\d.]+x\)", result.output), result.output


def test_refused_artifacts_are_rows_with_the_reason(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk import api
    from eyesdk.errors import ModelIntegrityError

    real = api.EyeState

    def refuse_int8(*args: object, precision: str = "auto", **kw: object) -> object:
        if precision == "int8":
            raise ModelIntegrityError("parity failed here")
        return real(*args, precision=precision, **kw)

    monkeypatch.setattr(api, "EyeState", refuse_int8)
    result = invoke("--model", tiny_bundle, "--backends", "onnxruntime", "--threads", "1", *FAST)
    assert result.exit_code == 0, result.output
    int8 = next(line for line in result.output.splitlines() if line.startswith("onnxruntime  int8"))
    assert int8.split()[3:5] == ["-", "-"] and "EyeState refused it: parity failed here" in int8


def test_nothing_to_measure_is_a_usage_error(tiny_bundle: Path, tmp_path: Path) -> None:
    partial = copy_bundle(tiny_bundle, tmp_path / "partial")
    drop_artifacts(partial, ("onnx", "fp16"))
    with pytest.raises(click.UsageError, match=r"has no artifact matching --backends/--precisions"):
        main.main(["throughput", "--model", str(partial), "--backends", "onnxruntime", "--precisions", "fp16"],
                  standalone_mode=False)
    with pytest.raises(click.ClickException, match="missing"):
        main.main(["throughput", "--model", str(tmp_path / "missing")], standalone_mode=False)
