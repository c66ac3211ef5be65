"""`eyesdk-convert train` and `cv` under `torchrun`: one process per device, PyTorch's DistributedDataParallel.

torchrun (single node, or several with ``--rdzv-backend c10d``) sets RANK, WORLD_SIZE and LOCAL_RANK; without them
this is one process and every method here is the identity, so single-process training is unchanged. The device is
CUDA when present (``cuda:LOCAL_RANK``, NCCL between processes) and the CPU otherwise (gloo). What is shared how:

* gradients: averaged by DDP after every step (each rank computes ``batch_size / WORLD_SIZE`` of the global batch,
  so the recipe's global batch and learning rate do not change with the number of processes);
* BatchNorm statistics: rank 0's are broadcast before every forward (DDP's default), so every rank, and the EMA,
  holds the same weights;
* validation: each rank scores a contiguous share of the validation crops and the logits are gathered, so every rank
  computes the same metrics, early-stopping decision and temperature as one process would;
* the training loss shown per epoch: the mean over ranks;
* checkpoints, logs and reports: written by rank 0 only (atomically), holding every rank's random-number state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from eyesdk.errors import EyeSDKError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI reads DEVICES on an install without it
    import torch
    from torch import nn

DEVICES = ("auto", "cpu", "cuda")
#: How long a rank waits for the others at a collective (rank 0 decoding the data first, evaluating a fold).
COLLECTIVE_TIMEOUT = dt.timedelta(minutes=60)


class DistributedSetupError(EyeSDKError, RuntimeError):
    """The launch environment or the requested device cannot run this training job."""


@dataclass(frozen=True)
class Placement:
    """Where this process sits in the job: global rank, number of processes, rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def placement_from_env(env: Mapping[str, str] | None = None) -> Placement:
    """The placement torchrun gives this process (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    env = os.environ if env is None else env
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    given = {name: env.get(name) for name in names}
    if all(v is None for v in given.values()):
        return Placement()
    try:
        rank, world, local = (int(given[name] if given[name] is not None else "0") for name in names)
    except ValueError:
        raise DistributedSetupError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers; got {given}") from None
    if given["WORLD_SIZE"] is None or world < 1 or not 0 <= rank < world or local < 0:
        raise DistributedSetupError(f"inconsistent launch environment {given}: start the job with torchrun")
    return Placement(rank, world, local)


def select_device(requested: str = "auto", local_rank: int = 0, cuda_devices: int | None = None) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is present (or asked for), else the CPU; `cuda_devices` overrides the count."""
    import torch

    if requested not in DEVICES:
        raise DistributedSetupError(f"unknown device {requested!r}; choose from {', '.join(DEVICES)}")
    count = torch.cuda.device_count() if cuda_devices is None else cuda_devices
    if requested == "cpu" or (requested == "auto" and count == 0):
        return torch.device("cpu")
    if count == 0:
        raise DistributedSetupError("--device cuda was asked for but no CUDA device is visible")
    if local_rank >= count:
        raise DistributedSetupError(f"local rank {local_rank} has no GPU of its own ({count} visible): start at most "
                                    f"{count} processes per node (torchrun --nproc_per_node {count})")
    return torch.device("cuda", local_rank)


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def amp_dtype(device: torch.device, bf16_supported: bool | None = None) -> torch.dtype | None:
    """Mixed precision of the training forward/backward: bfloat16 on GPUs that have it (no loss scaling needed),
    float16 with loss scaling on older ones, none on the CPU. Validation, EMA and checkpoints stay float32."""
    import torch

    if device.type != "cuda":
        return None
    supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return torch.bfloat16 if supported else torch.float16


class Distributed:
    """This process's part of a training job and the few collectives training needs (identities when alone)."""

    def __init__(self, placement: Placement = Placement(), device: torch.device | None = None,
                 amp: torch.dtype | None = None) -> None:
        self.placement = placement
        self._device = device
        self.amp = amp
        self._group = False

    @property
    def device(self) -> torch.device:
        if self._device is None:
            import torch

            self._device = torch.device("cpu")
        return self._device

    @classmethod
    def start(cls, device: str = "auto", amp: bool = True, env: Mapping[str, str] | None = None) -> Distributed:
        """Read the launch environment, pick the device and join the process group when there is more than one."""
        env = os.environ if env is None else env
        placement = placement_from_env(env)
        chosen = select_device(device, placement.local_rank)
        job = cls(placement, chosen, amp_dtype(chosen) if amp else None)
        if placement.world_size > 1:
            import torch
            import torch.distributed as dist
            from torch.distributed.rendezvous import rendezvous

            if chosen.type == "cuda":
                torch.cuda.set_device(chosen)
            store, _, _ = next(rendezvous("env://", placement.rank, placement.world_size, timeout=COLLECTIVE_TIMEOUT))
            # torchrun keeps one key-value store across the restarts of a job, and the process group's keys would
            # be the same in every attempt: a restarted rank would then read the address of a killed one. One key
            # prefix per attempt keeps them apart.
            store = dist.PrefixStore(f"eyesdk/attempt-{env.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
            dist.init_process_group(backend_for(chosen), store=store, rank=placement.rank,
                                    world_size=placement.world_size, timeout=COLLECTIVE_TIMEOUT)
            job._group = True
        return job

    def close(self) -> None:
        if self._group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self._group = False

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def rank(self) -> int:
        return self.placement.rank

    @property
    def world_size(self) -> int:
        return self.placement.world_size

    @property
    def is_main(self) -> bool:
        return self.placement.rank == 0

    def barrier(self) -> None:
        if self._group:
            import torch.distributed as dist

            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the body first (decoding the data into the cache, writing the folds file), then the rest."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def mean(self, value: float) -> float:
        """The mean of `value` over ranks."""
        if not self._group:
            return float(value)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def gather_objects(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self._group:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def gather(self, array: np.ndarray) -> np.ndarray:
        """Every rank's share concatenated in rank order (what `shard` split), on every rank."""
        return np.concatenate(self.gather_objects(np.asarray(array)))

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of n items (the first n % world_size ranks get one more)."""
        size, extra = divmod(n, self.world_size)
        start = self.rank * size + min(self.rank, extra)
        return slice(start, start + size + (self.rank < extra))

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module` when there are other ranks (gradients averaged across them)."""
        if not self._group:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # static_graph: the loss uses the same parameters every step, though maybe not all of them (the ArcFace loss
        # leaves the linear head out), which DDP then handles without searching the graph at each step
        return DistributedDataParallel(module, device_ids=device_ids, static_graph=True)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """Loss scaling, needed by float16 only."""
        import torch

        return torch.amp.GradScaler(self.device.type) if self.amp == torch.float16 else None

    def rank_seed(self, seed: int) -> int:
        """The seed of this rank's random streams: `seed` itself when alone (the single-process stream)."""
        if self.world_size == 1:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])


SINGLE = Distributed()
