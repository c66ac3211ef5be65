"""``eyesdk`` CLI: predict (text and JSON lines), info, tune."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import synthetic_eye

from eyesdk import bundle as bundle_module
from eyesdk.cli import main


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    paths = []
    for i, is_open in enumerate([True, False, True]):
        path = tmp_path / f"eye{i}.png"
        Image.fromarray(synthetic_eye(is_open, (48, 64), rng)).save(path)
        paths.append(path)
    return paths


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_predict_prints_one_line_per_image(tiny_bundle: Path, images: list[Path]) -> None:
    result = invoke("predict", *images, "--model", tiny_bundle)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(images)
    for line, path in zip(lines, images, strict=True):
        name, label, prob = line.split("\t")
        assert name == str(path) and label in ("open", "closed") and 0.0 <= float(prob) <= 1.0


def test_predict_json(tiny_bundle: Path, images: list[Path]) -> None:
    result = invoke("predict", *images, "--model", tiny_bundle, "--json", "--backend", "openvino",
                    "--precision", "int8")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["image"] for r in records] == [str(p) for p in images]
    for r in records:
        assert {"label", "is_open", "prob_open", "logit"} <= set(r)
        assert (r["backend"], r["precision"]) == ("openvino", "int8")
        assert r["is_open"] == (r["label"] == "open")


def test_bad_image_reports_its_line_and_fails(tiny_bundle: Path, images: list[Path], tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"nope")
    result = invoke("predict", images[0], tmp_path / "missing.png", tmp_path / "broken.png", "--model", tiny_bundle)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[1].startswith(f"{tmp_path / 'missing.png'}\terror\tFileNotFoundError")
    assert lines[2].startswith(f"{tmp_path / 'broken.png'}\terror\tInvalidCropError")
    result = invoke("predict", tmp_path / "missing.png", "--model", tiny_bundle, "--json")
    assert json.loads(result.output)["error"].startswith("FileNotFoundError")


def test_predict_rejects_unknown_backend(tiny_bundle: Path, images: list[Path]) -> None:
    result = CliRunner().invoke(main, ["predict", str(images[0]), "--backend", "coreml"])
    assert result.exit_code == 2
    assert "Invalid value for '--backend'" in result.output


def test_predict_with_a_broken_bundle_is_a_clean_error(tiny_bundle: Path, images: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["predict", str(images[0]), "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert "Error: bundle" in result.output and "has no manifest.json" in result.output


def test_predict_without_default_bundle(images: list[Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundle_module, "default_bundle_path", lambda: tmp_path / "default")
    result = CliRunner().invoke(main, ["predict", str(images[0])])
    assert result.exit_code == 1
    assert "embedded default model bundle is missing" in result.output


def test_info_then_tune_then_info(tiny_bundle: Path, private_cache: Path) -> None:
    result = invoke("info", "--model", tiny_bundle)
    assert result.exit_code == 0, result.output
    assert "fingerprint: " in result.output and "backend onnxruntime: onnxruntime " in result.output
    assert "bundle: eyestate-tiny" in result.output and "cached choice: none (run `eyesdk tune`)" in result.output
    assert re.search(r"auto runs: predict on \w+ \w+, batches on \w+ \w+", result.output), result.output

    result = invoke("tune", "--model", tiny_bundle)
    assert result.exit_code == 0, result.output
    assert "chosen: " in result.output and str(private_cache) in result.output
    assert sum(line.startswith("* ") for line in result.output.splitlines()) == 1

    data = json.loads(invoke("info", "--model", tiny_bundle, "--json").output)
    assert data["cached_choice"]["backend"] in data["backends"]
    assert data["bundle"]["name"] == "eyestate-tiny" and len(data["bundle"]["artifacts"]) == 9
    assert data["device"]["fingerprint"]
    runs = data["runs"]
    assert runs["predict"] == f"{data['cached_choice']['backend']} {data['cached_choice']['precision']}"
    if runs["predict"].startswith("tflite") and "onnxruntime" in data["backends"]:
        assert runs["batches"].startswith("onnxruntime") and runs["batch_reason"] == ""
    two = invoke("info", "--model", tiny_bundle, "--threads", "2")
    assert "predict_batch pipelined (threads >= 2)" in two.output, two.output


def test_tune_json(tiny_bundle: Path) -> None:
    data = json.loads(invoke("tune", "--model", tiny_bundle, "--json").output)
    assert data["schema"] == "eyesdk.tune/1" and Path(data["path"]).is_file()


def test_info_without_default_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundle_module, "default_bundle_path", lambda: tmp_path / "default")
    result = invoke("info")
    assert result.exit_code == 0
    assert "bundle: FileNotFoundError: the embedded default model bundle is missing" in result.output


def test_version() -> None:
    import eyesdk

    assert invoke("--version").output.strip() == f"eyesdk {eyesdk.__version__}"


# -- regressions of the adversarial pass (issue 14) ---------------------------------------------------------------


def test_a_directory_among_the_images_is_one_error_line(tiny_bundle: Path, images: list[Path], tmp_path: Path) -> None:
    """#15: `eyesdk predict a.png DIR b.png` was a usage error with no results at all."""
    folder = tmp_path / "folder"
    folder.mkdir()
    result = invoke("predict", images[0], folder, images[1], "--model", tiny_bundle)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[0].split("\t")[0] == str(images[0]) and lines[2].split("\t")[0] == str(images[1])
    assert lines[1].startswith(f"{folder}\terror\tIsADirectoryError")


def test_a_newline_in_a_file_name_cannot_forge_a_result_line(tiny_bundle: Path, images: list[Path],
                                                              tmp_path: Path) -> None:
    """Also: a file named 'x\\nfake.png\\topen\\t0.9999' printed a second, forged result line in text mode."""
    forged = tmp_path / "x\nfake.png\topen\t0.9999"
    forged.write_bytes(images[1].read_bytes())
    missing = tmp_path / "y\nmissing.png\tclosed\t0.0001"
    result = invoke("predict", forged, missing, "--model", tiny_bundle)
    lines = result.output.splitlines()
    assert len(lines) == 2, lines
    name, label, prob = lines[0].split("\t")
    assert name == repr(str(forged)) and label in ("open", "closed") and 0.0 <= float(prob) <= 1.0
    name, status, error = lines[1].split("\t")
    assert name == repr(str(missing)) and status == "error" and error.startswith("FileNotFoundError")
    records = [json.loads(line) for line in invoke("predict", forged, "--model", tiny_bundle, "--json").output
               .splitlines()]
    assert [r["image"] for r in records] == [str(forged)]


def test_info_without_a_home_directory(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eyesdk import tune

    monkeypatch.setattr(tune, "cache_dir", lambda: None)
    data = json.loads(invoke("info", "--model", tiny_bundle, "--json").output)
    assert data["cache_dir"] is None and data["cached_choice"] is None
