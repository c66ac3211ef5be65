"""Architecture latency sweep: bare runtime call per crop for candidate layer specs, against the peer, in one run.

Each candidate (a layer spec of ``eyesdk.converters.model`` at an input size) is built with random weights, exported
with the project's own exporters (ONNX fp32 dynamic batch; TFLite fp32 at batch 1 as shipped, plus a fixed-batch-256
TFLite file for the batch figure) and timed as the *bare* runtime call - ``session.run`` / ``set_tensor + invoke +
get_tensor`` on an already preprocessed input - interleaved round by round with the peer's bare ``session.run``
(``eyesdk.timing.interleaved_us``), so load on the shared machine hits every contestant alike.

    .venv/bin/python tools/latency_sweep.py [--only NAME,...] [--calls 2000] [--json runs/latency_sweep.json]

Prints, per candidate: params, MACs, per-crop µs at batch 1 (LiteRT, ORT; 1 thread) with the ratio to the peer's
bare call, and per-crop µs at batch 256 (LiteRT file of batch 256, ORT; 1 and 2 threads).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "open-closed-eye-0001" / "open-closed-eye.onnx"

# name -> (layer spec, input side). Channel counts in multiples of 8/16, early downsampling, depthwise blocks.
CANDIDATES: dict[str, tuple[str, int]] = {
    "shipped 6-12-24-48 @24": ("c6 c12/2 c24/2 c48/2", 24),
    "8-16-32-64 @24": ("c8 c16/2 c32/2 c64/2", 24),
    "s2 16-32-64 @24": ("c16/2 c32/2 c64/2", 24),
    "s2 16-32-64-128 @24": ("c16/2 c32/2 c64/2 c128/2", 24),
    "s2 16-32-32-64 @24": ("c16/2 c32 c32/2 c64/2", 24),
    "s2 16-32-64-64 @24": ("c16/2 c32/2 c64/2 c64", 24),
    "p16 32-64 @24": ("p16/2 c32/2 c64/2", 24),
    "p16 32-64-128 @24": ("p16/2 c32/2 c64/2 c128/2", 24),
    "s2 16 dw32-64-128 @24": ("c16/2 d32 d64/2 d128/2", 24),
    "s2 16 dw32-64-128-128 @24": ("c16/2 d32 d64/2 d128/2 d128", 24),
    "s2 24-48-96 @24": ("c24/2 c48/2 c96/2", 24),
    "s2 16-32-64 @32": ("c16/2 c32/2 c64/2", 32),
    "s2 16-32-64-128 @32": ("c16/2 c32/2 c64/2 c128/2", 32),
    "s2 16-32-64 @28": ("c16/2 c32/2 c64/2", 28),
    "s2 16-32-64 @20": ("c16/2 c32/2 c64/2", 20),
    "s2 16-32-48 @24": ("c16/2 c32/2 c48/2", 24),
    "s2 16-24-48 @24": ("c16/2 c24/2 c48/2", 24),
    "s2 16-32 dw64 @24": ("c16/2 c32/2 d64/2", 24),
    "s2 8-16-32-64 @24": ("c8/2 c16/2 c32/2 c64/2", 24),
    "s2 16-32-64 x2 (ensemble/flip price) @24": ("c32/2 c64/2 c128/2", 24),
    "teacher 16-32-64-128+128 @24": ("c16 c32/2 c64/2 c128/2 c128", 24),
}


def build(spec: str, seed: int = 0):
    import torch

    from eyesdk.converters.model import EyeNet

    torch.manual_seed(seed)
    model = EyeNet(spec, dropout=0.0).eval()
    for m in model.modules():  # non-trivial BN statistics so nothing folds into a constant
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def export_candidate(model, size: int, out: Path) -> dict[str, Path]:
    """ONNX fp32 (dynamic batch) and TFLite fp32 at batch 1 and at batch 256, by the project's exporters."""
    import onnx
    import torch

    from eyesdk.converters.export import export_model_copy
    from eyesdk.converters.export.onnx import export_fp32_proto
    from eyesdk.converters.export.tflite import _litert, _quiet

    out.mkdir(parents=True, exist_ok=True)
    clean = export_model_copy(model)
    paths = {"onnx": out / "m.onnx", "tflite1": out / "m1.tflite", "tflite256": out / "m256.tflite"}
    onnx.save_model(export_fp32_proto(clean, size), str(paths["onnx"]))
    for key, batch in (("tflite1", 1), ("tflite256", 256)):
        with _quiet():
            _litert().convert(clean, (torch.zeros(batch, 1, size, size),)).export(str(paths[key]))
    return paths


def ort_call(path: Path, x: np.ndarray, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    outputs = [session.get_outputs()[0].name]
    return lambda: session.run(outputs, feed)


def tflite_call(path: Path, x: np.ndarray, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    i = interpreter.get_input_details()[0]["index"]
    o = interpreter.get_output_details()[0]["index"]
    x = x.reshape(interpreter.get_input_details()[0]["shape"])

    def call():
        interpreter.set_tensor(i, x)
        interpreter.invoke()
        return interpreter.get_tensor(o)

    return call


def peer_call(x24: np.ndarray):
    """The peer's bare session.run (1 thread) on a (1, 3, 32, 32) input; None when ../shared is absent."""
    if not PEER.is_file():
        print(f"peer skipped: {PEER} not found")
        return None
    x = np.ascontiguousarray(np.random.default_rng(1).normal(0, 0.2, (1, 3, 32, 32)), dtype=np.float32)
    return ort_call(PEER, x, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all)")
    parser.add_argument("--spec", action="append", default=[], help="extra candidate 'SPEC@SIZE', repeatable")
    parser.add_argument("--calls", type=int, default=2000, help="batch-1 calls per contestant")
    parser.add_argument("--batch-calls", type=int, default=40, help="batch-256 calls per contestant")
    parser.add_argument("--json", default=None, help="write the table as JSON here")
    args = parser.parse_args(argv)

    from eyesdk.converters.flops import count_macs
    from eyesdk.converters.model import count_params
    from eyesdk.timing import interleaved_us

    candidates = dict(CANDIDATES)
    for item in args.spec:
        spec, _, size = item.rpartition("@")
        candidates[item] = (spec, int(size))
    if args.only:
        wanted = [n.strip() for n in args.only.split(",")]
        candidates = {n: candidates[n] for n in wanted + list(args.spec)}
    rng = np.random.default_rng(0)
    b1: dict[str, object] = {}
    b256: dict[str, object] = {}
    info: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="latency-sweep-") as tmp:
        for n, (name, (spec, size)) in enumerate(candidates.items()):
            model = build(spec)
            info[name] = {"spec": spec, "size": size, "params": count_params(model), "macs": count_macs(model, size)}
            paths = export_candidate(model, size, Path(tmp) / str(n))
            x1 = rng.standard_normal((1, 1, size, size)).astype(np.float32)
            x256 = rng.standard_normal((256, 1, size, size)).astype(np.float32)
            b1[f"{name}|tflite t1"] = tflite_call(paths["tflite1"], x1, 1)
            b1[f"{name}|ort t1"] = ort_call(paths["onnx"], x1, 1)
            for t in (1, 2):
                b256[f"{name}|tflite t{t}"] = tflite_call(paths["tflite256"], x256, t)
                b256[f"{name}|ort t{t}"] = ort_call(paths["onnx"], x256, t)
            print(f"exported {name}: {info[name]}", file=sys.stderr)
        peer = peer_call(None)
        if peer is not None:
            b1 = {"peer|ort t1": peer, **b1}
        us1 = {k: float(np.median(v)) for k, v in interleaved_us(b1, calls=args.calls, rounds=10).items()}
        us256 = {k: float(np.median(v)) / 256
                 for k, v in interleaved_us(b256, calls=args.batch_calls, rounds=8, warmup=3).items()}
    peer_us = us1.get("peer|ort t1")
    print(f"peer bare session.run (1 thread, batch 1): {peer_us:.1f} µs" if peer_us else "peer: not measured")
    head = (f"{'candidate':<28} {'spec':<30} {'params':>7} {'MACs':>9} | {'b1 tfl':>7} {'ratio':>6} {'b1 ort':>7}"
            f" {'ratio':>6} | {'b256 tfl1':>9} {'tfl2':>6} {'ort1':>6} {'ort2':>6}  (µs per crop)")
    print(head)
    rows = []
    for name, meta in info.items():
        row = {**meta, "name": name,
               "b1_tflite_t1": us1[f"{name}|tflite t1"], "b1_ort_t1": us1[f"{name}|ort t1"],
               **{f"b256_{rt}_t{t}": us256[f"{name}|{rt} t{t}"] for rt in ("tflite", "ort") for t in (1, 2)}}
        rows.append(row)
        r = (lambda v: f"{v / peer_us:.2f}x") if peer_us else (lambda v: "-")
        print(f"{name:<28} {meta['spec']:<30} {meta['params']:>7,} {meta['macs']:>9,} | "
              f"{row['b1_tflite_t1']:>7.1f} {r(row['b1_tflite_t1']):>6} {row['b1_ort_t1']:>7.1f} "
              f"{r(row['b1_ort_t1']):>6} | {row['b256_tflite_t1']:>9.2f} {row['b256_tflite_t2']:>6.2f} "
              f"{row['b256_ort_t1']:>6.2f} {row['b256_ort_t2']:>6.2f}")
    if args.json:
        from eyesdk.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps({"peer_us": peer_us, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
