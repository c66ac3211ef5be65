"""Training loop: BCEWithLogitsLoss with pos_weight (or the optional ArcFace head), EMA weights, early stopping on
validation, atomic checkpoints every epoch and resume after an interruption (even SIGKILL)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from eyesdk.metrics import balanced_accuracy, log_loss, roc_auc, sigmoid
from eyesdk.preprocess import DEFAULT_CONTRACT, PreprocessContract, standardize

from .augment import AugmentConfig, augment
from .checkpoint import read_checkpoint, save_checkpoint
from .model import build_model, count_macs, count_params


@dataclass
class TrainConfig:
    head: str = "bce"
    widths: Sequence[int] = (6, 12, 24, 48)
    extra: Sequence[int] = ()
    dropout: float = 0.1
    arc_scale: float = 16.0
    arc_margin: float = 0.2
    epochs: int = 25
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
    teacher: str | None = None  # checkpoint of a larger model to distil from
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


def sampling_weights(sources: Sequence[str], source_weights: dict[str, float]) -> np.ndarray:
    """Per-sample draw weights: each source's share multiplied by its weight (small visible-light sets count more)."""
    w = np.array([source_weights.get(s, 1.0) for s in sources], dtype=np.float64)
    return w / w.sum()


def positive_weight(y: np.ndarray, weights: np.ndarray) -> float:
    """BCE pos_weight = (expected negatives) / (expected positives) under the sampling distribution."""
    pos = float(weights[y == 1].sum())
    neg = float(weights[y == 0].sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"training data needs both classes; got open share {pos:.3f}, closed share {neg:.3f}")
    return neg / pos


def predict_logits(model: nn.Module, x_std: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Logits (N,) of standardized crops (N, S, S) or (N, 1, S, S)."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(x_std, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(model(x[i:i + batch]).view(-1))
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def predict_embeddings(model: nn.Module, x_std: np.ndarray, batch: int = 2048) -> np.ndarray:
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(x_std, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    with torch.no_grad():
        return torch.cat([model.embed(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, cfg: TrainConfig, pos_weight: torch.Tensor,
          teacher: nn.Module | None) -> torch.Tensor:
    if cfg.head == "arcface":
        class_weight = torch.stack([torch.ones(()), pos_weight])
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


def _validate(model: nn.Module, x_val: np.ndarray, y_val: np.ndarray) -> dict[str, float]:
    z = predict_logits(model, x_val)
    pred = (z >= 0).astype(np.int64)
    return {
        "val_bacc": balanced_accuracy(y_val, pred),
        "val_auc": roc_auc(y_val, z),
        "val_nll": log_loss(y_val, sigmoid(z)),
    }


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
) -> TrainResult:
    """Train on resized grey crops in [0, 1] (x_train, (N, S, S)); validate on standardized crops (x_val).

    Writes out_dir/last.pt after every epoch (full state, for resume) and out_dir/best.pt (EMA weights of the best
    validation epoch). Returns the best model with its fitted temperature left to the caller (see calibrate).
    """
    from eyesdk.metrics import fit_temperature

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    y_train = np.asarray(y_train, dtype=np.int64)
    y_val = np.asarray(y_val, dtype=np.int64)
    weights = sampling_weights(sources, cfg.source_weights)
    pos_weight = torch.tensor(positive_weight(y_train, weights), dtype=torch.float32)
    model = build_model(cfg.head, cfg.widths, cfg.extra, cfg.dropout, cfg.arc_scale, cfg.arc_margin)
    ema = copy.deepcopy(model).eval()
    teacher = None
    if cfg.teacher:
        from .checkpoint import load_model

        teacher, _ = load_model(cfg.teacher)
        teacher.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = max(1, cfg.samples_per_epoch // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    start_epoch, best_score, best_epoch, history = 0, -math.inf, -1, []

    last = out_dir / "last.pt"
    if resume and last.exists():
        state = read_checkpoint(last)
        if state.get("train_config") != cfg.to_dict():
            raise ValueError(f"{last} was written with another training config; use a new --out or --no-resume")
        model.load_state_dict(state["state_dict"])
        ema.load_state_dict(state["ema_state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best_score, best_epoch = state["epoch"] + 1, state["best_score"], state["best_epoch"]
        history = state["history"]
        if progress:
            print(f"resuming from {last} at epoch {start_epoch + 1}/{cfg.epochs}")

    x_all = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))[:, None]
    y_all = torch.from_numpy(y_train)
    draw = torch.from_numpy(weights)
    info = {"params": count_params(model), "macs": count_macs(model, contract.size)}
    meta_common = {"contract": contract.to_dict(), "train_config": cfg.to_dict(), "model_info": info,
                   **(extra_meta or {})}

    for epoch in range(start_epoch, cfg.epochs):
        if best_epoch >= 0 and epoch - best_epoch > cfg.patience:
            if progress:
                print(f"early stop: no validation gain for {cfg.patience} epochs (best epoch {best_epoch + 1})")
            break
        model.train()
        t0 = time.time()
        idx = torch.multinomial(draw, steps_per_epoch * cfg.batch_size, replacement=True, generator=gen)
        bar = _progress(range(steps_per_epoch), progress, f"epoch {epoch + 1}/{cfg.epochs}")
        running = 0.0
        for step in bar:
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(global_step, total_steps, warmup, cfg.lr)
            batch_idx = idx[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            xb = augment(x_all[batch_idx], cfg.augment, gen)
            xb = torch.from_numpy(standardize(xb.numpy() * 255.0, contract.std_floor))
            loss = _loss(model, xb, y_all[batch_idx], cfg, pos_weight, teacher)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            _ema_update(ema, model, cfg.ema_decay if global_step > warmup else 0.0)
            running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
            if progress and step % 10 == 0:
                bar.set_postfix(loss=f"{running:.4f}")
        metrics = {"epoch": epoch + 1, "train_loss": running, "seconds": time.time() - t0,
                   **_validate(ema, x_val, y_val)}
        history.append(metrics)
        score = metrics["val_bacc"] + 0.1 * metrics["val_auc"] - 0.01 * metrics["val_nll"]
        if score > best_score:
            best_score, best_epoch = score, epoch
            save_checkpoint(out_dir / "best.pt", ema, epoch=epoch, **meta_common)
        if progress:
            print(f"epoch {epoch + 1}: loss {running:.4f}  val bacc {metrics['val_bacc']:.4f}  "
                  f"auc {metrics['val_auc']:.4f}  nll {metrics['val_nll']:.4f}  ({metrics['seconds']:.0f} s)"
                  + ("  *best*" if best_epoch == epoch else ""))
        save_checkpoint(last, model, ema_state_dict=ema.state_dict(), optimizer=optimizer.state_dict(),
                        generator=gen.get_state(), torch_rng=torch.get_rng_state(), epoch=epoch,
                        best_score=best_score, best_epoch=best_epoch, history=history, **meta_common)

    best_path = out_dir / "best.pt"
    best_state = read_checkpoint(best_path)
    model = build_model(cfg.head, cfg.widths, cfg.extra, cfg.dropout, cfg.arc_scale, cfg.arc_margin)
    model.load_state_dict(best_state["state_dict"])
    model.eval()
    temperature = fit_temperature(predict_logits(model, x_val), y_val)
    save_checkpoint(best_path, model, epoch=best_state["epoch"], temperature=temperature, history=history,
                    **meta_common)
    return TrainResult(model, temperature, best_state["epoch"], history, best_path)


def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(m.detach(), alpha=1 - decay)
            else:
                e.copy_(m)


def _progress(iterable: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _Quiet(iterable)
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


class _Quiet:
    def __init__(self, iterable: Any):
        self._it = iterable

    def __iter__(self):
        return iter(self._it)

    def set_postfix(self, **_: Any) -> None:
        pass
