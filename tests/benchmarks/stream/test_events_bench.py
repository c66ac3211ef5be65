"""The event-accuracy benchmark: frames and replayed logits agree; the CLI refuses trained-on subjects; real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import eyesdk
from eyesdk.benchmarks.cli import main as bench
from eyesdk.benchmarks.stream import events_bench
from eyesdk.benchmarks.stream.playback import load_subjects


@pytest.fixture(scope="module")
def eye_state() -> eyesdk.EyeState:
    return eyesdk.EyeState(backend="onnxruntime", precision="fp32")


def test_frames_and_replayed_logits_give_the_same_result(tiny_mrl, eye_state) -> None:
    root = tiny_mrl[0]
    crops = load_subjects(root, ["mrl:s0002"])
    configs = {"default": events_bench.variants()["default"]}
    a = events_bench.run(eye_state, crops, 1.0, 0.5, mode="frames", configs=configs)
    b = events_bench.run(eye_state, crops, 1.0, 0.5, mode="logits", configs=configs)
    assert a["variants"]["default"]["subjects"] == b["variants"]["default"]["subjects"]
    assert a["variants"]["default"]["pooled"]["events"]["truth"] > 10


def test_the_cli_writes_the_document_and_figure(tiny_mrl, tmp_path: Path) -> None:
    root, folds, _, held = tiny_mrl
    out, figure = tmp_path / "events.json", tmp_path / "timeline.svg"
    result = CliRunner().invoke(bench, ["stream", "events", "--data", str(root), "--subjects-from", f"{folds}:{held}",
                                        "--minutes-awake", "0.5", "--minutes-drowsy", "1.5", "--mode", "logits",
                                        "--backend", "onnxruntime", "--json", str(out), "--figure", str(figure),
                                        "--sweep", '{"exit0": {"filter": {"exit_closed": 0.0}}}', "--quiet"])
    assert result.exit_code == 0, result.output
    assert "default" in result.output and "exit0" in result.output and "targets" in result.output
    document = json.loads(out.read_text())
    assert document["schema"] == "eyesdk.bench.stream-events/1"
    assert document["subjects"]["mrl"] == ["mrl:s0002", "mrl:s0003"] and document["subjects"]["verified"]
    assert "Fusek" in document["data"]["licence"]
    assert figure.read_text().startswith("<svg") and "PERCLOS" in figure.read_text()


def test_the_cli_refuses_subjects_the_bundle_trained_on(tiny_mrl) -> None:
    root, folds, trained, _ = tiny_mrl
    result = CliRunner().invoke(bench, ["stream", "events", "--data", str(root), "--subjects-from",
                                        f"{folds}:{trained}", "--backend", "onnxruntime"])
    assert result.exit_code == 2 and "refusing to report them as unseen" in result.output


@pytest.mark.real_data
def test_unseen_mrl_subjects_briefly(shared_data: Path, eye_state) -> None:
    from bundle_folds import shipped_folds

    from eyesdk.benchmarks.stream.subjects import unseen_subjects

    folds = Path(__file__).resolve().parents[3] / "folds" / "shared-data-5fold.json"
    chosen = unseen_subjects(eye_state.bundle.manifest, f"{folds}:{shipped_folds()[1]}")
    subjects = sorted(s for s in chosen.subjects if s.startswith("mrl:"))[:2]
    crops = load_subjects(shared_data / "mrlEyes_2018_01", subjects)
    result = events_bench.run(eye_state, crops, 1.0, 0.5, mode="logits",
                              configs={"default": events_bench.variants()["default"]})
    pooled = result["variants"]["default"]["pooled"]
    assert pooled["events"]["truth"] > 20 and pooled["events"]["f1"] > 0.8


def test_the_noise_command(tiny_mrl, tmp_path: Path) -> None:
    root, folds, _, held = tiny_mrl
    out = tmp_path / "noise.json"
    result = CliRunner().invoke(bench, ["stream", "noise", "--data", str(root), "--subjects-from", f"{folds}:{held}",
                                        "--backend", "onnxruntime", "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert set(document["subjects"]) == {"mrl:s0002", "mrl:s0003"}
    assert document["subjects"]["mrl:s0002"]["open"]["n"] == 24 and "lag1_autocorrelation" in \
        document["subjects"]["mrl:s0002"]["closed"]


@pytest.mark.parametrize(
    ("sweep", "match"),
    [
        ('["not", "an", "object"]', r"--sweep: expected a JSON object: variant name"),
        ('{"v": {"events": 1}}', r"--sweep: each section is an object of fields"),
        ('{"v": {"events": {"bogus": 1}}}', r"--sweep: .*unexpected keyword argument 'bogus'"),
        ('{"v": {bad', r"--sweep: is not valid JSON"),
    ],
)
def test_a_bad_sweep_is_a_usage_error(tiny_mrl, sweep: str, match: str) -> None:
    import re

    root, folds, _, held = tiny_mrl
    result = CliRunner().invoke(bench, ["stream", "events", "--data", str(root), "--subjects-from", f"{folds}:{held}",
                                        "--mode", "logits", "--backend", "onnxruntime", "--sweep", sweep, "--quiet"])
    assert result.exit_code == 2 and re.search(match, result.output), result.output
