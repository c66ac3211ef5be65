"""``eyesdk-bench peer-latency`` (benchmarks/peer_latency.py): our predict vs a peer's bare run, one process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

from eyesdk.benchmarks import peer_latency
from eyesdk.benchmarks.cli import main
from eyesdk.benchmarks.gates import EXIT_GATES_FAILED
from eyesdk.benchmarks.peers import load_peer

FAST = ("--runs", "40", "--rounds", "4")


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, ["peer-latency", *map(str, args)], catch_exceptions=False)


def test_auto_against_the_peers_bare_run_and_whole_call(tiny_bundle: Path, omz_like_onnx: Path,
                                                        tmp_path: Path) -> None:
    out = tmp_path / "peer.json"
    result = invoke("--model", tiny_bundle, "--peer", f"omz-open-closed-eye:{omz_like_onnx}", "--json", out, *FAST)
    assert result.exit_code == 0, result.output
    names = [r["contestant"] for r in json.loads(out.read_text())["results"]]
    assert names[:2] == ["peer bare session.run", "peer whole call"] and len(names) == 3
    assert re.fullmatch(r"ours auto \((onnxruntime|openvino|tflite) (fp32|fp16|int8)\)", names[2])
    document = json.loads(out.read_text())
    assert document["schema"] == peer_latency.SCHEMA and document["crop"]["source"] == "synthetic"
    bare, whole, auto = document["results"]
    assert bare["vs_peer_run"] == pytest.approx(1.0) and whole["vs_peer"] == pytest.approx(1.0)
    assert auto["vs_peer_run"] == pytest.approx(auto["p50"] / bare["p50"])
    assert f"{names[2]}: {auto['vs_peer_run']:.2f}x the peer's bare session.run" in result.output
    verdict = "met" if auto["vs_peer_run"] <= peer_latency.TARGET_RATIO else "not met"
    assert f"issue 11 target <= 0.65x the peer's bare session.run: {verdict} ({auto['vs_peer_run']:.3f}x)" in (
        result.output)
    assert document["peer"]["sha256"] and "onnxruntime" in document["peer"]["runtime"]


def test_all_adds_every_installed_artifact_and_a_crop_file(tiny_bundle: Path, omz_like_onnx: Path,
                                                           tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    crop = tmp_path / "eye.png"
    image_module.fromarray(np.full((70, 80), 90, np.uint8)).save(crop)
    result = invoke("--model", tiny_bundle, "--peer", f"omz-open-closed-eye:{omz_like_onnx}", "--all", "--crop",
                    crop, *FAST)
    assert result.exit_code == 0, result.output
    assert f"crop: {crop}, 70x80 uint8" in result.output
    assert "ours onnxruntime fp32" in result.output and "ours onnxruntime int8" in result.output


def test_max_ratio_is_a_gate(tiny_bundle: Path, omz_like_onnx: Path) -> None:
    args = ("--model", tiny_bundle, "--peer", f"omz-open-closed-eye:{omz_like_onnx}", *FAST)
    assert invoke(*args, "--max-ratio", "1000").exit_code == 0
    failed = invoke(*args, "--max-ratio", "0.0001")
    assert failed.exit_code == EXIT_GATES_FAILED
    assert re.search(r"GATE FAILED max_ratio: ours auto .* is [\d.]+x the peer's bare session.run > --max-ratio "
                     r"0.0001", failed.output)


def test_the_peer_is_explicit_and_checked(tiny_bundle: Path, tmp_path: Path) -> None:
    missing = invoke("--model", tiny_bundle)
    assert missing.exit_code == 2 and "Missing option '--peer'" in missing.output
    with pytest.raises(click.ClickException, match=r"peer file .*nope.onnx does not exist"):
        main.main(["peer-latency", "--model", str(tiny_bundle), "--peer",
                   f"omz-open-closed-eye:{tmp_path / 'nope.onnx'}"], standalone_mode=False)


def test_rows_divide_by_both_peer_figures(omz_like_onnx: Path) -> None:
    peer = load_peer(f"omz-open-closed-eye:{omz_like_onnx}")
    times = {f"peer-run:{peer.name}": np.array([10.0]), f"peer:{peer.name}": np.array([20.0]),
             "ours a": np.array([5.0])}
    table = peer_latency.rows(times, peer.name, ["ours a"])
    assert [(r["contestant"], r["vs_peer_run"], r["vs_peer"]) for r in table] == [
        ("peer bare session.run", 1.0, 0.5), ("peer whole call", 2.0, 1.0), ("ours a", 0.5, 0.25)]
    assert "ours a" in peer_latency.format_table(table)
