"""``eyesdk-bench breakdown`` (benchmarks/breakdown.py): each stage of one predict call timed alone."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from eyesdk.api import EyeState
from eyesdk.benchmarks import breakdown, latency
from eyesdk.benchmarks.cli import main
from eyesdk.bundle import load_bundle


def test_stages_reproduce_the_whole_call(tiny_bundle: Path) -> None:
    es = EyeState(load_bundle(tiny_bundle), backend="onnxruntime", precision="fp32")
    crop = latency.synthetic_crop()
    calls = breakdown.stages(es, crop)
    size = es.bundle.contract.size
    assert list(calls) == [breakdown.WHOLE, "grey conversion", f"resize to {size}x{size}", "standardization",
                           "inference (onnxruntime fp32)"]
    logit = float(list(calls.values())[-1]()[0])
    assert logit == pytest.approx(calls[breakdown.WHOLE]().logit, abs=1e-6)  # the stages are the public call's


def test_shares_are_of_the_whole_call() -> None:
    table = breakdown.shares({breakdown.WHOLE: np.array([10.0, 10.0]), "a": np.array([2.0, 4.0])})
    assert table == [(breakdown.WHOLE, 10.0, 1.0), ("a", 3.0, 0.3)]


def test_command_prints_one_line_per_stage(tiny_bundle: Path) -> None:
    result = CliRunner().invoke(main, ["breakdown", "--model", str(tiny_bundle), "--backend", "tflite", "--runs",
                                       "30"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("crop: synthetic, 90x90 uint8; tflite ")
    assert [line.split("  ")[1] for line in lines[1:3]] == ["whole predict", "grey conversion"]
    assert re.search(r"inference \(tflite \w+\) +[\d.]+ µs +[\d.]+%", result.output)


def test_command_names_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(click.ClickException, match="missing"):
        main.main(["breakdown", "--model", str(tmp_path / "missing")], standalone_mode=False)
