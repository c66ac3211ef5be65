"""Measure what docs/training-at-scale.md reports: a repository tool, not part of the wheel (needs the train extra).

    python tools/training_scale.py loader --data ../shared/data/mrlEyes_2018_01 --data ../shared/data/cew
    python tools/training_scale.py ddp --data ../shared/data/mrlEyes_2018_01 --data ../shared/data/cew --procs 1,2
    python tools/training_scale.py rounding --data ../shared/data/mrlEyes_2018_01 --data ../shared/data/cew

``loader``: crops/s of the three ways training can get crops, measured in one run on the same images: decoding
image files (what `load_crops` does without a cache, 2 threads), writing a pack (`eyesdk-convert pack`), and reading
random training batches from that pack (`ShardedCrops.take`), plus the per-process cost of turning a batch into
training inputs (augment + standardize), which bounds a training process whatever the loader.

``rounding``: what a pack's uint8 crops change for the shipped bundle (inputs, fp32 ONNX logits, decisions) against
decoding the same files.

``ddp``: training samples/s of the same `eyesdk-convert train` on a pack as 1, 2, ... torchrun processes (the shipped
recipe's network, batch 256), from the epoch times in report.json after the first epoch. On a 2-core machine two
processes share the cores: the figure checks the overhead, it is not a GPU scaling figure.

Both print a table and, with --json, write every measurement; ratios are taken within the one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure_loader(data: list[str], images: int, batches: int, size: int, seed: int = 0) -> dict:
    import torch

    from eyesdk.converters.augment import AugmentConfig
    from eyesdk.converters.datasets import _decode_all, read_sources
    from eyesdk.converters.pack import Pack, write_pack
    from eyesdk.converters.train import _gather, augmented_inputs
    from eyesdk.preprocess import PreprocessContract

    contract = PreprocessContract(size=size)
    samples = read_sources(data)
    rng = np.random.default_rng(seed)
    picked = [samples[i] for i in np.sort(rng.choice(len(samples), size=min(images, len(samples)), replace=False))]
    paths = [str(s.path) for s in picked]

    t0 = time.perf_counter()
    rows, _ = _decode_all(paths, contract, standardized=False, progress=False)
    decode_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="eyesdk-scale-") as tmp:
        t0 = time.perf_counter()
        summary = write_pack(picked, Path(tmp) / "pack", contract, progress=False)
        pack_s = time.perf_counter() - t0
        pack = Pack([Path(tmp) / "pack"])
        draws = torch.randint(0, len(pack), (batches, 256), generator=torch.Generator().manual_seed(seed))
        t0 = time.perf_counter()
        for idx in draws:
            pack.crops.take(idx.numpy())
        take_s = time.perf_counter() - t0
        inputs_s = {}
        for threads in (1, 2):  # torch's intra-op threads (--threads): the augmentations are torch ops
            gen = torch.Generator().manual_seed(seed)
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            for idx in draws:
                augmented_inputs(_gather(pack.crops, idx), AugmentConfig(), gen, contract)
            inputs_s[threads] = time.perf_counter() - t0
        bytes_per_crop = size * size
    n_batched = batches * 256
    return {
        "images": len(paths), "decoded": len(rows), "size": size,
        "decode_files_crops_per_s": _rate(len(rows), decode_s),
        "write_pack_crops_per_s": _rate(summary.count, pack_s),
        "pack_random_batches_crops_per_s": _rate(n_batched, take_s),
        "augment_standardize_crops_per_s_1_thread": _rate(n_batched, inputs_s[1]),
        "augment_standardize_crops_per_s_2_threads": _rate(n_batched, inputs_s[2]),
        "pack_bytes_per_crop": bytes_per_crop,
        "ratio_pack_read_vs_decode": _rate(n_batched, take_s) / _rate(len(rows), decode_s),
    }


def measure_rounding(data: list[str], images: int, seed: int = 0) -> dict:
    """What storing the resized crop as uint8 changes for the shipped model: its inputs and fp32 ONNX decisions on
    the same images, decoded from the files vs read from their pack."""
    from eyesdk.bundle import load_bundle
    from eyesdk.converters.datasets import load_crops, read_sources
    from eyesdk.converters.pack import Pack, write_pack
    from eyesdk.converters.runners import artifact_logits
    from eyesdk.metrics import predict_open

    bundle = load_bundle()
    entry = bundle.artifact("onnx", "fp32")
    samples = read_sources(data)
    rng = np.random.default_rng(seed)
    picked = [samples[i] for i in np.sort(rng.choice(len(samples), size=min(images, len(samples)), replace=False))]
    files = load_crops(picked, bundle.contract, progress=False)
    with tempfile.TemporaryDirectory(prefix="eyesdk-round-") as tmp:
        write_pack(files.samples, Path(tmp) / "pack", bundle.contract, progress=False)
        packed = Pack([Path(tmp) / "pack"]).load()
    model = bundle.file(entry["file"])
    z_files = artifact_logits("onnx", model, files.x[:, None])
    z_pack = artifact_logits("onnx", model, packed.x[:, None])
    t = float(entry["temperature"])
    flips = predict_open(z_files, t, bundle.threshold) != predict_open(z_pack, t, bundle.threshold)
    y = np.asarray(files.y, dtype=np.int64)
    return {
        "bundle": bundle.name, "images": len(files.y),
        "max_abs_input_diff": float(np.max(np.abs(files.x - packed.x))),
        "max_abs_logit_diff": float(np.max(np.abs(z_files - z_pack))),
        "mean_abs_logit_diff": float(np.mean(np.abs(z_files - z_pack))),
        "decision_flips": int(flips.sum()),
        "accuracy_files": float(np.mean(predict_open(z_files, t, bundle.threshold) == y)),
        "accuracy_pack": float(np.mean(predict_open(z_pack, t, bundle.threshold) == y)),
    }


def measure_ddp(data: list[str], procs: list[int], samples_per_epoch: int, epochs: int, size: int) -> dict:
    from eyesdk.converters.datasets import read_sources
    from eyesdk.converters.pack import write_pack
    from eyesdk.preprocess import PreprocessContract

    results = {}
    with tempfile.TemporaryDirectory(prefix="eyesdk-ddp-") as tmp:
        work = Path(tmp)
        write_pack(read_sources(data), work / "pack", PreprocessContract(size=size), progress=False)
        for n in procs:
            out = work / f"run{n}"
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                       "-m", "eyesdk.converters.cli", "train", "--data", str(work / "pack"), "--size", str(size),
                       "--folds", str(work / "folds.json"), "--epochs", str(epochs),
                       "--samples-per-epoch", str(samples_per_epoch), "--batch-size", "256", "--threads", "1",
                       "--patience", str(epochs), "--device", "cpu", "--out", str(out), "--quiet"]
            print("$", " ".join(command[1:]), file=sys.stderr)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
            history = json.loads((out / "report.json").read_text())["history"]
            seconds = [h["seconds"] for h in history[1:]] or [history[0]["seconds"]]
            results[n] = {"epoch_seconds": seconds, "samples_per_s": samples_per_epoch / float(np.median(seconds))}
    base = results[procs[0]]["samples_per_s"]
    for n in procs:
        results[n]["speedup_vs_first"] = results[n]["samples_per_s"] / base
    return {"samples_per_epoch": samples_per_epoch, "epochs": epochs, "size": size, "cpu_count": os.cpu_count(),
            "procs": {str(n): r for n, r in results.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    loader = sub.add_parser("loader", help="crops/s: decoding files vs a pack vs the per-batch training inputs")
    ddp = sub.add_parser("ddp", help="training samples/s for 1, 2, ... torchrun processes")
    rounding = sub.add_parser("rounding", help="the shipped model on files vs on their pack's uint8 crops")
    rounding.add_argument("--images", type=int, default=8000)
    for p in (loader, ddp, rounding):
        p.add_argument("--data", action="append", required=True, help="image source (repeatable)")
        p.add_argument("--size", type=int, default=24)
        p.add_argument("--json", type=Path, help="write the measurements here")
    loader.add_argument("--images", type=int, default=8000, help="images decoded and packed")
    loader.add_argument("--batches", type=int, default=200, help="random batches of 256 read from the pack")
    ddp.add_argument("--procs", default="1,2")
    ddp.add_argument("--samples-per-epoch", type=int, default=25_600)
    ddp.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.what == "loader":
        result = measure_loader(args.data, args.images, args.batches, args.size)
    elif args.what == "rounding":
        result = measure_rounding(args.data, args.images)
    else:
        result = measure_ddp(args.data, [int(n) for n in args.procs.split(",")], args.samples_per_epoch,
                             args.epochs, args.size)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
