"""Training loop: BCEWithLogitsLoss with pos_weight (or the optional ArcFace head), EMA weights, early stopping on
validation, atomic checkpoints every epoch and resume after an interruption (even SIGKILL). Under torchrun the same
loop runs on every rank with DistributedDataParallel (`converters/distributed.py`); alone, it is one process."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from eyesdk.metrics import balanced_accuracy, fit_temperature, log_loss, predict_open, roc_auc, sigmoid
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, standardize
from eyesdk.progress import Progress

from .augment import AugmentConfig, augment, targeted_crops
from .checkpoint import read_checkpoint, save_checkpoint
from .distributed import SINGLE, Distributed
from .export import THRESHOLD
from .flops import count_macs
from .model import build_model, count_params
from .sampling import sampling_weights

_UNIT = torch.tensor(1.0 / 255.0, dtype=torch.float32)  # [0, 255] -> [0, 1], the augmentations' range
MULTINOMIAL_LIMIT = 2**24  # categories torch.multinomial accepts


@dataclass
class TrainConfig:
    head: str = "bce"
    layers: str | None = "c16/2 c32/2 c64/2"  # the network as a layer spec (converters/model.py)
    widths: Sequence[int] = ()  # classic EyeNet conv widths; when given they (and `extra`) replace `layers`
    extra: Sequence[int] = ()
    dropout: float = 0.1
    arc_scale: float = 16.0
    arc_margin: float = 0.2
    epochs: int = 30
    samples_per_epoch: int = 40_000
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    patience: int = 8
    ema_decay: float = 0.998
    seed: int = 0
    threads: int = 1
    source_weights: dict[str, float] = field(default_factory=lambda: {"cew": 4.0})
    cell_weights: dict[str, float] = field(default_factory=dict)  # attribute cells drawn more often (sampling.py)
    teacher: str | list[str] | None = None  # checkpoint(s) to distil from; several = mean-logit ensemble (distill.py)
    distill_alpha: float = 0.5  # weight of the hard-label loss; 1 - alpha goes to matching the teacher
    distill_temperature: float = 2.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["extra"] = list(self.widths), list(self.extra)
        d["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["augment"].items()}
        return d


@dataclass
class TrainResult:
    model: nn.Module
    temperature: float
    best_epoch: int
    history: list[dict[str, float]]
    checkpoint: Path


def model_of(cfg: TrainConfig) -> nn.Module:
    """The untrained network a config describes (its layer spec, or the classic widths + extra)."""
    layers = None if cfg.widths else cfg.layers
    return build_model(cfg.head, cfg.widths, cfg.extra, cfg.dropout, cfg.arc_scale, cfg.arc_margin, layers)


def positive_weight(y: np.ndarray, weights: np.ndarray) -> float:
    """BCE pos_weight = (expected negatives) / (expected positives) under the sampling distribution."""
    pos = float(weights[y == 1].sum())
    neg = float(weights[y == 0].sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"training data needs both classes; got open share {pos:.3f}, closed share {neg:.3f}")
    return neg / pos


def _batches(x_std: Any, batch: int, device: torch.device) -> Iterator[torch.Tensor]:
    """(B, 1, S, S) float32 tensors on `device` from standardized crops (N, S, S) or (N, 1, S, S), read by slices."""
    for i in range(0, len(x_std), batch):
        xb = torch.from_numpy(np.ascontiguousarray(x_std[i:i + batch], dtype=np.float32))
        yield (xb[:, None] if xb.ndim == 3 else xb).to(device)


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def predict_logits(model: nn.Module, x_std: Any, batch: int = 2048) -> np.ndarray:
    """Logits (N,) of standardized crops (N, S, S) or (N, 1, S, S): an array or anything sliceable into arrays."""
    model.eval()
    with torch.no_grad():
        out = [model(xb).view(-1).float().cpu() for xb in _batches(x_std, batch, _device_of(model))]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def predict_embeddings(model: nn.Module, x_std: Any, batch: int = 2048) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([model.embed(xb).float().cpu() for xb in _batches(x_std, batch, _device_of(model))]).numpy()


def lr_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup: int) -> LRScheduler:
    """Per-step learning rate: linear warm-up from lr / warmup to lr over `warmup` steps, then a cosine to 0 at
    `total_steps` (torch's LinearLR then CosineAnnealingLR): step s < warmup gets lr * (s + 1) / warmup."""
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup))
    if warmup <= 0:
        return cosine
    ramp = LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=max(1, warmup - 1))
    return SequentialLR(optimizer, [ramp, cosine], milestones=[warmup])


def ema_of(model: nn.Module, decay: float, warmup: int) -> AveragedModel:
    """torch's EMA (``AveragedModel`` + ``get_ema_multi_avg_fn``) of the weights and BatchNorm statistics.

    Until warm-up is over (the first ``warmup + 1`` updates) it copies the model instead of averaging, so the
    average never carries the random initialisation; integer buffers (BatchNorm's batch counter) are copied.
    """
    average = get_ema_multi_avg_fn(decay)

    def update(ema_tensors: list[torch.Tensor], tensors: list[torch.Tensor], updates: torch.Tensor) -> None:
        if int(updates) <= warmup or not ema_tensors[0].dtype.is_floating_point:
            for e, m in zip(ema_tensors, tensors, strict=True):
                e.copy_(m)
        else:
            average(ema_tensors, tensors, updates)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True).eval()


def _gather(crops: Any, idx: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) float32 of the crops at `idx`: from an array, or a pack's memory-mapped shards (`take`)."""
    return torch.from_numpy(np.asarray(crops.take(idx.numpy(), axis=0), dtype=np.float32))[:, None]


def augmented_inputs(crops: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
                     contract: PreprocessContract, targeted: torch.Tensor | None = None) -> torch.Tensor:
    """Training inputs of a batch of resized crops in [0, 255] (B, 1, S, S): augmented, then standardized.

    The augmentations work in [0, 1], so the batch is scaled down for them and back up after; crops that are not
    augmented (validation, evaluation, export) are standardized as they are, exactly as the runtime does it.
    """
    augmented = augment(crops * _UNIT, cfg, gen, targeted)
    return torch.from_numpy(standardize(augmented.numpy() * 255.0, contract.std_floor))


def _loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, pos_weight: torch.Tensor,
          teacher: nn.Module | None) -> torch.Tensor:
    if cfg.head == "arcface":
        class_weight = torch.stack([torch.ones((), device=pos_weight.device), pos_weight])
        return F.cross_entropy(model.margin_logits(xb, yb), yb.long(), weight=class_weight)
    z = model(xb).view(-1)
    hard = F.binary_cross_entropy_with_logits(z, yb.float(), pos_weight=pos_weight)
    if teacher is None:
        return hard
    tau = cfg.distill_temperature
    with torch.no_grad():
        soft_target = torch.sigmoid(teacher(xb).view(-1) / tau)
    soft = F.binary_cross_entropy_with_logits(z / tau, soft_target) * tau**2
    return cfg.distill_alpha * hard + (1 - cfg.distill_alpha) * soft


class _Objective(nn.Module):
    """The training loss as a module's forward, so DistributedDataParallel sees every use of the weights (the ArcFace
    loss calls ``margin_logits``, not ``forward``). The teacher is an argument, so DDP never syncs its weights."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, pos_weight: torch.Tensor) -> None:
        super().__init__()
        self.model, self.cfg, self.pos_weight = model, cfg, pos_weight

    def forward(self, xb: torch.Tensor, yb: torch.Tensor, teacher: nn.Module | None) -> torch.Tensor:
        return _loss(self.model, xb, yb, self.cfg, self.pos_weight, teacher)


def _logits(model: nn.Module, x: Any, dist: Distributed) -> np.ndarray:
    """Logits of all of `x`, each rank scoring its share: every rank gets the same array, as one process would."""
    return dist.gather(predict_logits(model, x[dist.shard(len(x))]))


def _validate(model: nn.Module, x_val: Any, y_val: np.ndarray, dist: Distributed = SINGLE) -> dict[str, float]:
    z = _logits(model, x_val, dist)
    pred = predict_open(z, threshold=THRESHOLD)
    return {
        "val_bacc": balanced_accuracy(y_val, pred),
        "val_auc": roc_auc(y_val, z),
        "val_nll": log_loss(y_val, sigmoid(z)),
    }


@dataclass
class _Run:
    """What one training run carries from epoch to epoch (and what last.pt stores to resume it)."""

    model: nn.Module
    objective: nn.Module  # the loss of `model` (wrapped in DDP when there are other ranks)
    ema: AveragedModel
    teacher: nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler | None  # float16 loss scaling on older GPUs only
    generator: torch.Generator  # this rank's draws and augmentations
    draw: torch.Tensor  # per-sample draw weights
    targeted: torch.Tensor | None  # crops that may get frames / glints (AugmentConfig.targeted_sources)
    steps_per_epoch: int
    rank_batch: int  # this rank's share of the global batch
    warmup: int
    dist: Distributed
    start_epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    history: list[dict[str, float]] = field(default_factory=list)


def train(
    x_train: np.ndarray,
    y_train: np.ndarray,
    sources: Sequence[str],
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: TrainConfig,
    out_dir: str | Path,
    contract: PreprocessContract = DEFAULT_CONTRACT,
    resume: bool = True,
    progress: bool = True,
    extra_meta: dict[str, Any] | None = None,
    dist: Distributed = SINGLE,
    attrs: Sequence[Mapping[str, str]] | None = None,
) -> TrainResult:
    """Train on resized grey crops in [0, 255] (x_train, (N, S, S): `resize_grey`'s output, or a pack's uint8 crops,
    anything with `take`); validate on standardized crops (x_val: `preprocess_grey`'s output, sliceable).

    Writes out_dir/last.pt after every epoch (full state, for resume) and out_dir/best.pt (EMA weights of the best
    validation epoch). Returns the best model with its fitted temperature left to the caller (see calibrate).
    Under torchrun (`dist`, see `converters/distributed.py`) every rank calls this with the same data; rank 0
    alone prints and writes, and every rank returns the same result.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress and dist.is_main
    y_train = np.asarray(y_train, dtype=np.int64)
    y_val = np.asarray(y_val, dtype=np.int64)
    run = _start_run(y_train, sources, cfg, dist, attrs)
    last = out_dir / "last.pt"
    if resume and last.exists():
        _resume(run, last, cfg, progress)
    y_all = torch.from_numpy(y_train)
    meta = _checkpoint_meta(run.model, cfg, contract, extra_meta)
    for epoch in range(run.start_epoch, cfg.epochs):
        if run.best_epoch >= 0 and epoch - run.best_epoch > cfg.patience:
            if progress:
                print(f"early stop: no validation gain for {cfg.patience} epochs (best epoch {run.best_epoch + 1})")
            break
        t0 = time.time()
        loss = _train_epoch(run, epoch, x_train, y_all, cfg, contract, progress)
        metrics = {"epoch": epoch + 1, "train_loss": dist.mean(loss), "seconds": time.time() - t0,
                   **_validate(run.ema.module, x_val, y_val, dist)}
        _end_epoch(run, epoch, metrics, out_dir, meta, progress)
    return _finish(out_dir, x_val, y_val, cfg, run.history, meta, dist)


def _start_run(y_train: np.ndarray, sources: Sequence[str], cfg: TrainConfig, dist: Distributed,
               attrs: Sequence[Mapping[str, str]] | None = None) -> _Run:
    """Seed, build the model, its EMA copy, the optional teacher, the optimizer and the epoch geometry."""
    if cfg.batch_size % dist.world_size:
        raise ValueError(f"batch size {cfg.batch_size} does not split over {dist.world_size} processes; use a "
                         f"multiple of {dist.world_size} (--batch-size is the global batch)")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    weights = sampling_weights(sources, cfg.source_weights, attrs, cfg.cell_weights, y_train)
    pos_weight = torch.tensor(positive_weight(y_train, weights), dtype=torch.float32, device=dist.device)
    model = model_of(cfg).to(dist.device)
    if dist.world_size > 1:
        torch.manual_seed(dist.rank_seed(cfg.seed))  # every rank starts from the same weights, then its own dropout
    steps_per_epoch = max(1, cfg.samples_per_epoch // cfg.batch_size)
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    teacher = None
    if cfg.teacher:
        from .distill import load_teacher

        teacher = load_teacher(cfg.teacher).to(dist.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(dist.rank_seed(cfg.seed))
    return _Run(model, dist.wrap(_Objective(model, cfg, pos_weight)), ema_of(model, cfg.ema_decay, warmup), teacher,
                optimizer, lr_schedule(optimizer, steps_per_epoch * cfg.epochs, warmup), dist.grad_scaler(), gen,
                torch.from_numpy(weights), targeted_crops(sources, cfg.augment), steps_per_epoch,
                cfg.batch_size // dist.world_size, warmup, dist)


def _resume(run: _Run, last: Path, cfg: TrainConfig, progress: bool) -> None:
    """Continue after the last finished epoch of `last` (weights, EMA, optimizer and both random streams)."""
    state = read_checkpoint(last)
    if state.get("train_config") != cfg.to_dict():
        raise ValueError(f"{last} was written with another training config; use a new --out or --no-resume")
    if "scheduler" not in state or "rank_rng" not in state:
        raise ValueError(f"{last} was written by an older eyesdk (no scheduler state); use --no-resume")
    if len(state["rank_rng"]) != run.dist.world_size:
        raise ValueError(f"{last} was written by a job of {len(state['rank_rng'])} processes; resume it with as many "
                         "(torchrun --nproc_per_node / --nnodes) or start again with --no-resume")
    run.model.load_state_dict(state["state_dict"])
    run.ema.module.load_state_dict(state["ema_state_dict"])
    run.ema.n_averaged.fill_((state["epoch"] + 1) * run.steps_per_epoch)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(run, state["rank_rng"][run.dist.rank])
    run.start_epoch, run.best_score, run.best_epoch = state["epoch"] + 1, state["best_score"], state["best_epoch"]
    run.history = state["history"]
    if progress:
        print(f"resuming from {last} at epoch {run.start_epoch + 1}/{cfg.epochs}")


def _checkpoint_meta(model: nn.Module, cfg: TrainConfig, contract: PreprocessContract,
                     extra_meta: dict[str, Any] | None) -> dict[str, Any]:
    """What every checkpoint of the run records besides weights: contract, config, model size, data summary."""
    info = {"params": count_params(model), "macs": count_macs(model, contract.size)}
    return {"contract": contract.to_dict(), "train_config": cfg.to_dict(), "model_info": info, **(extra_meta or {})}


def draw_indices(weights: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
    """`count` draws with replacement from per-sample weights. torch.multinomial takes at most 2**24 categories;
    a larger pack is drawn by inverting the cumulative weights (the same distribution)."""
    if len(weights) <= MULTINOMIAL_LIMIT:
        return torch.multinomial(weights, count, replacement=True, generator=gen)
    cumulative = torch.cumsum(weights.to(torch.float64), 0)
    u = torch.rand(count, generator=gen, dtype=torch.float64) * cumulative[-1]
    return torch.searchsorted(cumulative, u, right=True).clamp_(max=len(weights) - 1)


def _train_epoch(run: _Run, epoch: int, x_train: Any, y_all: torch.Tensor, cfg: TrainConfig,
                 contract: PreprocessContract, progress: bool) -> float:
    """One epoch of weighted draws with replacement (each rank its own share); returns the smoothed training loss."""
    run.model.train()
    batch, device = run.rank_batch, run.dist.device
    idx = draw_indices(run.draw, run.steps_per_epoch * batch, run.generator)
    running = 0.0
    with Progress(run.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", enabled=progress) as bar:
        for step in range(run.steps_per_epoch):
            batch_idx = idx[step * batch:(step + 1) * batch]
            targeted = None if run.targeted is None else run.targeted[batch_idx]
            xb = augmented_inputs(_gather(x_train, batch_idx), cfg.augment, run.generator, contract,
                                  targeted).to(device)
            with run.dist.autocast():
                loss = run.objective(xb, y_all[batch_idx].to(device), run.teacher)
            run.optimizer.zero_grad(set_to_none=True)
            if run.scaler is None:
                loss.backward()
                run.optimizer.step()
            else:
                run.scaler.scale(loss).backward()
                run.scaler.step(run.optimizer)
                run.scaler.update()
            run.scheduler.step()
            run.ema.update_parameters(run.model)
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            if progress and step % 10 == 0:
                bar.postfix(loss=f"{running:.4f}")
            bar.step()
    return running


def _end_epoch(run: _Run, epoch: int, metrics: dict[str, float], out_dir: Path, meta: dict[str, Any],
               progress: bool) -> None:
    """Record the epoch, keep the best EMA weights in best.pt, and write the full state to last.pt."""
    run.history.append(metrics)
    score = metrics["val_bacc"] + 0.1 * metrics["val_auc"] - 0.01 * metrics["val_nll"]
    rank_rng = run.dist.gather_objects(_rng_state(run))  # a collective: every rank takes part
    if score > run.best_score:
        run.best_score, run.best_epoch = score, epoch
        if run.dist.is_main:
            save_checkpoint(out_dir / "best.pt", run.ema.module, epoch=epoch, **meta)
    if not run.dist.is_main:
        return
    if progress:
        print(f"epoch {epoch + 1}: loss {metrics['train_loss']:.4f}  val bacc {metrics['val_bacc']:.4f}  "
              f"auc {metrics['val_auc']:.4f}  nll {metrics['val_nll']:.4f}  ({metrics['seconds']:.0f} s)"
              + ("  *best*" if run.best_epoch == epoch else ""))
    save_checkpoint(out_dir / "last.pt", run.model, ema_state_dict=run.ema.module.state_dict(),
                    optimizer=run.optimizer.state_dict(), scheduler=run.scheduler.state_dict(), rank_rng=rank_rng,
                    epoch=epoch, best_score=run.best_score, best_epoch=run.best_epoch, history=run.history, **meta)


def _rng_state(run: _Run) -> dict[str, torch.Tensor]:
    """This rank's random streams: its draws/augmentations, dropout (and CUDA's, on a GPU)."""
    state = {"generator": run.generator.get_state(), "torch_rng": torch.get_rng_state()}
    if run.dist.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(run.dist.device)
    return state


def _set_rng_state(run: _Run, state: dict[str, torch.Tensor]) -> None:
    run.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and run.dist.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], run.dist.device)


def _finish(out_dir: Path, x_val: Any, y_val: np.ndarray, cfg: TrainConfig, history: list[dict[str, float]],
            meta: dict[str, Any], dist: Distributed = SINGLE) -> TrainResult:
    """Reload the best EMA weights, fit the temperature on validation and store it in best.pt."""
    dist.barrier()  # rank 0 has written best.pt
    best_path = out_dir / "best.pt"
    best_state = read_checkpoint(best_path)
    model = model_of(cfg)
    model.load_state_dict(best_state["state_dict"])
    model.to(dist.device).eval()
    temperature = fit_temperature(_logits(model, x_val, dist), y_val)
    model.cpu()
    if dist.is_main:
        save_checkpoint(best_path, model, epoch=best_state["epoch"], temperature=temperature, history=history,
                        **meta)
    dist.barrier()  # no rank returns (and goes on to read best.pt) before it is final
    return TrainResult(model, temperature, best_state["epoch"], history, best_path)
