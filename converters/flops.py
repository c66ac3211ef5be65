"""Compute cost of a model, counted by torch's own FLOP counter (``torch.utils.flop_counter``).

The model card and every manifest report multiply-accumulates (MACs) of one batch-1 forward pass: half the counter's
FLOPs, which count a multiply and an add per MAC for convolutions and matrix products. BatchNorm, ReLU and pooling are
not counted (BatchNorm folds into the convolutions at export; the others are tiny next to the convolutions).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one forward pass of a (1, 1, size, size) input, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 1, size, size))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
