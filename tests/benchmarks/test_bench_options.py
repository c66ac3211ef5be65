"""Options every eyesdk-bench command shares (benchmarks/options.py): bundle, crop, filters, the rebuilt command."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from eyesdk import bundle as bundle_module
from eyesdk.benchmarks import latency, options
from eyesdk.bundle import load_bundle


def test_load_bundle_without_a_default_says_to_pass_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_module, "default_bundle_path", lambda: tmp_path / "default")
    with pytest.raises(click.UsageError, match=r"no embedded default bundle .* --model path/to/bundle"):
        options.load_bundle(None)


def test_load_bundle_takes_a_path(tiny_bundle: Path) -> None:
    assert options.load_bundle(tiny_bundle).name == load_bundle(tiny_bundle).name


def test_no_match_lists_what_the_bundle_ships(tiny_bundle: Path) -> None:
    with pytest.raises(click.UsageError, match=r"has no artifact matching --backends/--precisions \(it ships: "
                                               r"onnx fp32, .*tflite int8\)"):
        raise options.no_match(load_bundle(tiny_bundle))


def test_benchmark_crop_is_the_synthetic_eye_or_a_decoded_file(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    crop, source = options.benchmark_crop(None)
    np.testing.assert_array_equal(crop, latency.synthetic_crop())
    assert source == "synthetic"
    path = tmp_path / "eye.png"
    image_module.fromarray(np.full((40, 60, 3), 128, np.uint8)).save(path)
    grey, where = options.benchmark_crop(path)
    assert grey.shape == (40, 60) and grey.dtype == np.uint8 and where == str(path)


@click.group()
def _group() -> None:
    pass


@_group.command("sub")
@options.backends
@options.threads("1,2")
@options.json_out("x")
@click.option("--flag", is_flag=True)
def _sub(backends: tuple[str, ...] | None, threads: tuple[int, ...], json_path: Path | None, flag: bool) -> None:
    click.echo(f"{backends} {threads} {json_path} {flag}")
    click.echo(options.command_line(click.get_current_context()))


def test_shared_options_parse_comma_lists_and_rebuild_the_command() -> None:
    result = CliRunner().invoke(_group, ["sub", "--backends", "tflite,onnxruntime", "--threads", "2", "--flag"])
    assert result.exit_code == 0, result.output
    parsed, command = result.output.splitlines()
    assert parsed == "('tflite', 'onnxruntime') (2,) None True"
    assert command == "eyesdk-bench sub --backends tflite --backends onnxruntime --threads 2 --flag"
    defaults = CliRunner().invoke(_group, ["sub"]).output.splitlines()
    assert defaults == ["None (1, 2) None False", "eyesdk-bench sub"]


@pytest.mark.parametrize(("args", "message"), [
    (["--backends", "tensorrt"], "unknown backend tensorrt; choose from onnxruntime, openvino, tflite"),
    (["--threads", "0"], "thread counts must be integers >= 1"),
])
def test_shared_options_refuse_bad_values(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_group, ["sub", *args])
    assert result.exit_code == 2 and message in result.output
