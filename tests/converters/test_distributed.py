"""Training under torchrun: launch environment, device choice, the collectives, and real 2-process gloo jobs.

Tolerance of a 2-process job against one process (same data, same command): validation and test balanced accuracy
within 0.05 and ROC-AUC within 0.01. The jobs differ only in their random draws (each rank samples and augments its
own share with its own seed) and in BatchNorm batch statistics (32 crops per rank instead of 64).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from synthetic import synthetic_eye, write_eye_tree  # noqa: E402

from eyesdk.converters import train as train_module  # noqa: E402
from eyesdk.converters.checkpoint import read_checkpoint  # noqa: E402
from eyesdk.converters.cli import main  # noqa: E402
from eyesdk.converters.distributed import (  # noqa: E402
    Distributed,
    DistributedSetupError,
    Placement,
    amp_dtype,
    backend_for,
    placement_from_env,
    select_device,
)

BACC_TOLERANCE, AUC_TOLERANCE = 0.05, 0.01


# ------------------------------------------------------------------------------------------ launch and device


def test_placement_comes_from_torchrun_variables() -> None:
    assert placement_from_env({}) == Placement(0, 1, 0)
    assert placement_from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == Placement(3, 8, 1)
    with pytest.raises(DistributedSetupError, match="must be integers"):
        placement_from_env({"RANK": "one", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(DistributedSetupError, match="inconsistent launch environment .* start the job with torchrun"):
        placement_from_env({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(DistributedSetupError, match="inconsistent launch environment"):
        placement_from_env({"RANK": "0"})


def test_device_is_cuda_of_the_local_rank_when_present() -> None:
    assert select_device("auto", 0, cuda_devices=0) == torch.device("cpu")
    assert select_device("auto", 1, cuda_devices=2) == torch.device("cuda", 1)
    assert select_device("cpu", 1, cuda_devices=2) == torch.device("cpu")
    assert select_device("cuda", 0, cuda_devices=1) == torch.device("cuda", 0)
    with pytest.raises(DistributedSetupError, match="no CUDA device is visible"):
        select_device("cuda", 0, cuda_devices=0)
    with pytest.raises(DistributedSetupError, match="local rank 2 has no GPU of its own .*--nproc_per_node 2"):
        select_device("auto", 2, cuda_devices=2)
    with pytest.raises(DistributedSetupError, match="unknown device 'tpu'"):
        select_device("tpu")


def test_backend_and_mixed_precision_follow_the_device() -> None:
    cuda = torch.device("cuda", 0)
    assert backend_for(cuda) == "nccl" and backend_for(torch.device("cpu")) == "gloo"
    assert amp_dtype(cuda, bf16_supported=True) == torch.bfloat16
    assert amp_dtype(cuda, bf16_supported=False) == torch.float16
    assert amp_dtype(torch.device("cpu")) is None
    job = Distributed(Placement(), torch.device("cpu"), None)
    assert job.grad_scaler() is None and isinstance(job.autocast(), type(__import__("contextlib").nullcontext()))


def test_alone_every_collective_is_the_identity() -> None:
    job = Distributed.start(device="cpu", env={})
    layer = torch.nn.Linear(2, 1)
    assert job.is_main and job.world_size == 1 and job.wrap(layer) is layer
    assert job.mean(2.5) == 2.5 and job.gather_objects("x") == ["x"]
    np.testing.assert_array_equal(job.gather(np.arange(3)), np.arange(3))
    assert job.shard(10) == slice(0, 10) and job.rank_seed(7) == 7
    with job.main_first():
        job.barrier()
    job.close()


def test_shards_cover_every_item_once() -> None:
    for world in (1, 2, 3, 8):
        parts = [Distributed(Placement(r, world, r)).shard(10) for r in range(world)]
        assert [i for part in parts for i in range(10)[part]] == list(range(10))
        seeds = {Distributed(Placement(r, world, r)).rank_seed(0) for r in range(world)}
        assert len(seeds) == world


def test_large_datasets_are_drawn_by_the_cumulative_weights(monkeypatch) -> None:
    """Beyond torch.multinomial's 2**24 categories: the same distribution, by inverting the cumulative weights."""
    monkeypatch.setattr(train_module, "MULTINOMIAL_LIMIT", 10)
    weights = torch.tensor([0.5, 0.0, 0.25, 0.125, 0.125] * 4, dtype=torch.float64)
    weights /= weights.sum()
    draws = train_module.draw_indices(weights, 200_000, torch.Generator().manual_seed(0))
    assert draws.min() >= 0 and draws.max() < 20 and not (draws % 5 == 1).any()
    shares = torch.bincount(draws, minlength=20).double() / len(draws)
    assert torch.allclose(shares, weights, atol=0.004)


def _tiny(epochs: int = 2, **kw) -> train_module.TrainConfig:
    return train_module.TrainConfig(widths=(4, 8), epochs=epochs, samples_per_epoch=256, batch_size=64, lr=5e-3,
                                    ema_decay=0.9, **kw)


def _arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from eyesdk.preprocess import resize_grey

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return np.stack([resize_grey(synthetic_eye(bool(v), 32, rng), 32) for v in y]), y


def test_refusals_before_any_collective(tmp_path: Path) -> None:
    from eyesdk.preprocess import standardize

    x, y = _arrays(64, 0)
    xv = standardize(x[:16], 0.02)
    with pytest.raises(ValueError, match="batch size 64 does not split over 3 processes"):
        train_module.train(x, y, ["t"] * 64, xv, y[:16], _tiny(), tmp_path, progress=False,
                           dist=Distributed(Placement(0, 3, 0)))
    train_module.train(x, y, ["t"] * 64, xv, y[:16], _tiny(1), tmp_path, progress=False)
    with pytest.raises(ValueError, match="written by a job of 1 processes; resume it with as many"):
        train_module.train(x, y, ["t"] * 64, xv, y[:16], _tiny(1), tmp_path, progress=False,
                           dist=Distributed(Placement(0, 2, 0)))


# ----------------------------------------------------------------------------------- real 2-process gloo jobs


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_eye_tree(tmp_path_factory.mktemp("ddp-eyes"))


def _args(tree: Path, work: Path, out: Path) -> list[str]:
    return ["train", "--data", str(tree), "--folds", str(work / "folds.json"), "--cache", str(work / "cache"),
            "--k", "4", "--test-fold", "1", "--widths", "4,8", "--epochs", "4", "--samples-per-epoch", "1024",
            "--batch-size", "64", "--ema-decay", "0.9", "--lr", "5e-3", "--device", "cpu", "--out", str(out),
            "--quiet"]


def _torchrun(args: list[str], restarts: int = 0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--max-restarts", str(restarts), "--monitor-interval", "0.2", "-m", "eyesdk.converters.cli", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs(tree: Path, tmp_path_factory) -> dict[str, Path]:
    """The same `eyesdk-convert train` as one process and as a 2-process torchrun job."""
    work = tmp_path_factory.mktemp("ddp-runs")
    result = CliRunner().invoke(main, _args(tree, work, work / "one"))
    assert result.exit_code == 0, result.output
    job = _torchrun(_args(tree, work, work / "two"))
    output, _ = job.communicate(timeout=300)
    assert job.returncode == 0, output
    return {"work": work, "one": work / "one", "two": work / "two", "output": output}


def test_two_processes_match_one_within_the_tolerance(runs) -> None:
    one = json.loads((runs["one"] / "report.json").read_text())
    two = json.loads((runs["two"] / "report.json").read_text())
    for split in ("val", "test"):
        a, b = one[split]["overall"], two[split]["overall"]
        assert a["n"] == b["n"] == 60
        assert abs(a["bacc"] - b["bacc"]) <= BACC_TOLERANCE, (split, a["bacc"], b["bacc"])
        assert abs(a["auc"] - b["auc"]) <= AUC_TOLERANCE, (split, a["auc"], b["auc"])
        assert b["bacc"] >= 0.9


def test_rank_zero_alone_reports_and_checkpoints(runs) -> None:
    assert runs["output"].count("== val (fold 0) ==") == 1 and runs["output"].count("checkpoint: ") == 1
    assert sorted(p.name for p in runs["two"].iterdir()) == ["best.pt", "last.pt", "report.json"]
    last = read_checkpoint(runs["two"] / "last.pt")
    assert len(last["rank_rng"]) == 2 and last["epoch"] == 3
    assert not torch.equal(last["rank_rng"][0]["generator"], last["rank_rng"][1]["generator"])


def _pid_of_rank(rank: int, marker: str) -> int | None:
    """The torchrun worker of `rank` whose command line mentions `marker` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmdline and f"RANK={rank}".encode() in environ and b"LOCAL_RANK=" + str(rank).encode() \
                in environ and b"-m\0torch.distributed.run" not in cmdline:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker through /proc")
@pytest.mark.parametrize("rank", [0, 1])
def test_a_killed_rank_resumes_where_the_job_left_off(tree: Path, runs, rank: int) -> None:
    """SIGKILL one rank after the first checkpoint; torchrun restarts the job, which resumes from last.pt and ends
    with the weights of the job that was never interrupted."""
    out = runs["work"] / f"killed{rank}"
    job = _torchrun(_args(tree, runs["work"], out), restarts=1)
    killed_at = None
    deadline = time.monotonic() + 240
    while killed_at is None and job.poll() is None and time.monotonic() < deadline:
        if (out / "last.pt").exists():
            pid = _pid_of_rank(rank, str(out))
            if pid is not None:
                state = read_checkpoint(out / "last.pt")
                os.kill(pid, signal.SIGKILL)
                killed_at = state
        time.sleep(0.02)
    output, _ = job.communicate(timeout=300)
    assert killed_at is not None, "never saw a checkpoint and a rank to kill\n" + output
    assert job.returncode == 0, output
    assert killed_at["epoch"] < 3, "the job finished before it could be killed"
    final = read_checkpoint(out / "last.pt")
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3, 4]
    kept = killed_at["history"][-1]
    assert final["history"][killed_at["epoch"]] == kept  # the finished epochs were resumed, not trained again
    reference = read_checkpoint(runs["two"] / "last.pt")
    for key, value in reference["state_dict"].items():
        torch.testing.assert_close(final["state_dict"][key], value, rtol=0, atol=1e-5)
