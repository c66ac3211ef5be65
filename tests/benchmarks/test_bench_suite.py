"""One benchmark run (benchmarks/suite.py) on the tiny bundle: its phases, in order, and the document they build.

The CLI end to end is tests/benchmarks/test_bench_cli.py; here ``run_bench`` and its phases are called directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runtime_helpers import copy_bundle, drop_artifacts

from eyesdk import backends
from eyesdk.benchmarks import suite
from eyesdk.benchmarks.schema import json_safe, validate
from eyesdk.bundle import load_bundle
from eyesdk.formats import FORMATS, PRECISIONS

ONNX = ("onnxruntime",)


@pytest.fixture(scope="module")
def document(bench_run: dict[str, Any]) -> dict[str, Any]:
    return bench_run


def test_settings_quick_caps_runs_and_skips_throughput() -> None:
    quick = suite.Settings(runs=1000, quick=True)
    assert quick.runs == suite.QUICK_RUNS and quick.batch_sizes == () and quick.warmup == 5
    assert suite.Settings(runs=1000).warmup == 100 and suite.Settings(runs=10, warmup=0).warmup == 0


def test_plan_follows_the_format_table_and_the_thread_sweep(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    entries = suite.plan(bundle, suite.Settings(threads=(1, 2)))
    expected = [(f.backend, p, t) for f in FORMATS.values() for p in PRECISIONS for t in (1, 2)]
    assert [(e.backend, e.precision, e.threads) for e in entries] == expected
    assert entries[1].key == "onnxruntime fp32 t2" and entries[0].result["file"] == "eyestate_fp32.onnx"
    assert suite.plan(bundle, suite.Settings(backends=("tflite",), precisions=("int8",)))[0].key == "tflite int8"


def test_run_goes_through_every_phase_in_order(document: dict[str, Any]) -> None:
    ticks = document["_ticks"]
    loaded = [t for t in ticks if t.startswith("loaded onnxruntime")]
    assert loaded == ["loaded onnxruntime fp32: parity ok", "loaded onnxruntime fp32 t2: parity ok",
                      "loaded onnxruntime int8: parity ok", "loaded onnxruntime int8 t2: parity ok"]
    order = [next(i for i, t in enumerate(ticks) if t.startswith(prefix)) for prefix in
             ("loaded onnxruntime", "loaded peer", "timing 6 contestants", "throughput at batch 1",
              "throughput at batch 8", "scored onnxruntime", "scored peer")]
    assert order == sorted(order)


def test_document_is_valid_and_says_what_was_measured(document: dict[str, Any]) -> None:
    clean = json_safe({k: v for k, v in document.items() if k != "_ticks"})
    validate(clean)
    assert clean["command"] == "eyesdk-bench test" and clean["settings"]["batch_sizes"] == [1, 8]
    assert clean["settings"]["crop"] == {"source": "synthetic", "height": 90, "width": 90}
    assert clean["gates"]["ok"] is True and clean["gates"]["max_p50_us"] == 1e9
    for result in clean["results"]:
        assert result["latency_us"]["p50"] > 0 and result["throughput_per_s"]["8"] > 0
        assert result["throughput_per_s"]["64"] is None  # not asked for: null, key kept for the schema


def test_ratios_divide_by_the_fastest_and_both_peer_figures(document: dict[str, Any]) -> None:
    (peer,) = document["peers"]
    fastest = min(r["latency_us"]["p50"] for r in document["results"])
    for result in document["results"]:
        p50, ratios = result["latency_us"]["p50"], result["ratios"]
        assert ratios["p50_vs_fastest"] == pytest.approx(p50 / fastest)
        assert ratios["p50_vs_peer"] == pytest.approx(p50 / peer["latency_us"]["p50"])
        assert ratios["p50_vs_peer_run"] == pytest.approx(p50 / peer["latency_run_us"]["p50"])
    assert peer["ratios"]["ours_fastest_p50_vs_peer"] == pytest.approx(fastest / peer["latency_us"]["p50"])


def test_quality_is_scored_once_per_artifact_with_drift_against_fp32(document: dict[str, Any]) -> None:
    by_key = {(r["precision"], r["threads"]): r for r in document["results"]}
    assert by_key[("fp32", 1)]["accuracy"] == by_key[("fp32", 2)]["accuracy"]  # same logits for a thread sweep
    assert by_key[("fp32", 1)]["drift"]["acc_pp"] == 0.0
    assert by_key[("int8", 2)]["drift"]["reference"] == "onnxruntime fp32"
    assert document["peers"][0]["accuracy"]["acc"] is not None


def test_drift_falls_back_to_another_backends_fp32(tiny_bundle: Path, tmp_path: Path, bench_data: Any) -> None:
    bundle_dir = copy_bundle(tiny_bundle, tmp_path / "no-onnx-fp32")
    drop_artifacts(bundle_dir, ("onnx", "fp32"))
    settings = suite.Settings(runs=5, backends=ONNX, precisions=("int8",), batch_sizes=())
    doc = suite.run_bench(load_bundle(bundle_dir), settings, bench_data)
    fallback = next(b for b in ("openvino", "tflite") if backends.is_available(b))
    assert doc["results"][0]["drift"]["reference"] == f"{fallback} fp32"


def test_entries_that_cannot_load_are_results_not_crashes(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(backends, "is_available", lambda backend: backend != "openvino")
    settings = suite.Settings(runs=5, backends=("openvino", "tflite"), precisions=("fp32",), batch_sizes=(1,))
    doc = suite.run_bench(load_bundle(tiny_bundle), settings)
    openvino, tflite = doc["results"]
    assert openvino["error"] == "not installed (pip install 'eyesdk[openvino]')" and openvino["latency_us"] is None
    assert openvino["throughput_per_s"] is None and openvino["ratios"]["p50_vs_fastest"] is None
    assert tflite["error"] is None and tflite["ratios"]["p50_vs_fastest"] == pytest.approx(1.0)


def test_device_block_lists_every_runtime_from_the_format_table() -> None:
    libraries = suite.device_block()["libraries"]
    for fmt in FORMATS.values():
        assert fmt.distributions[0] in libraries
    assert libraries["numpy"] == np.__version__ and "eyesdk" in libraries and "pillow" in libraries
