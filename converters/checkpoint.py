"""Checkpoints: plain dicts of tensors and JSON-like values, written atomically, read with weights_only=True."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from eyesdk.atomic import atomic_write

from .model import model_from_config


def save_checkpoint(path: str | Path, model: nn.Module, **meta: Any) -> Path:
    """Write {"config", "state_dict", **meta} to path via a temp file + rename, so a kill never leaves half a file.

    meta must hold only tensors, numbers, strings, lists and dicts (no pickled objects), e.g. optimizer state dicts,
    epoch, temperature, contract, data summary.
    """
    payload = {"config": dict(model.config), "state_dict": model.state_dict(), **meta}
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict safely (no arbitrary unpickling)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model in eval mode from a checkpoint; returns (model, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    model = model_from_config(ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
