"""Fixtures of the benchmark tests: the session's tiny bundle, a tiny labelled PNG set, a synthetic OMZ-like peer."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic import synthetic_eye

SIZES = [(90, 90), (72, 96), (64, 64), (110, 100)]


@pytest.fixture(scope="session")
def labelled_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic eye PNGs of mixed sizes in a ``path,label,subject,glasses`` CSV manifest."""
    image_module = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("bench-data")
    rng = np.random.default_rng(7)
    rows = []
    for i in range(24):
        is_open = i % 2 == 0
        name = f"eye{i:02d}.png"
        image_module.fromarray(synthetic_eye(is_open, SIZES[i % len(SIZES)], rng)).save(root / name)
        rows.append({"path": name, "label": "open" if is_open else "closed", "subject": f"p{i // 4}",
                     "glasses": "yes" if i % 3 == 0 else "no"})
    manifest = root / "eyes.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "subject", "glasses"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def write_omz_like_onnx(path: Path, gain: float = 4.0) -> Path:
    """An ONNX file with the OMZ open-closed-eye interface: input ``input.1`` [1,3,32,32], softmax output [1,2,1,1].

    Its "open" logit is ``gain * mean(x)`` and its "closed" logit the negative, so P(open) is known in closed form:
    ``sigmoid(2 * gain * mean(x))``.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["m"], axes=[1, 2, 3], keepdims=1),  # [1,1,1,1]
        helper.make_node("Mul", ["m", "gain"], ["pos"]),
        helper.make_node("Neg", ["pos"], ["neg"]),
        helper.make_node("Concat", ["neg", "pos"], ["logits"], axis=1),  # [1,2,1,1]: index 1 = open
        helper.make_node("Softmax", ["logits"], ["19"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "omz_like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("19", TensorProto.FLOAT, [1, 2, 1, 1])],
        initializer=[helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="eyesdk-tests")
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def omz_like_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_omz_like_onnx(tmp_path_factory.mktemp("peer") / "omz_like.onnx")


@pytest.fixture(scope="session")
def bench_data(tiny_bundle: Path, labelled_csv: Path) -> Any:
    """The labelled CSV, preprocessed for the tiny bundle as ``eyesdk-bench --data`` does."""
    from eyesdk.benchmarks.data import load_labelled
    from eyesdk.bundle import load_bundle

    return load_labelled([labelled_csv], load_bundle(tiny_bundle).contract, progress=False)


@pytest.fixture(scope="session")
def bench_run(tiny_bundle: Path, bench_data: Any, omz_like_onnx: Path) -> dict[str, Any]:
    """One ``run_bench``: onnxruntime fp32 + int8 at 1 and 2 threads, batches 1 and 8, with data and a peer.

    The progress messages it emitted are under ``"_ticks"`` (not part of the document).
    """
    from eyesdk.benchmarks import suite
    from eyesdk.benchmarks.gates import Gates
    from eyesdk.bundle import load_bundle

    settings = suite.Settings(runs=20, threads=(1, 2), backends=("onnxruntime",), precisions=("fp32", "int8"),
                              batch_sizes=(1, 8))
    ticks: list[str] = []
    document = suite.run_bench(load_bundle(tiny_bundle), settings, bench_data,
                               [f"omz-open-closed-eye:{omz_like_onnx}"], gates=Gates(max_p50_us=1e9),
                               progress=ticks.append, command="eyesdk-bench test")
    return {**document, "_ticks": ticks}
