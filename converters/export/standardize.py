"""Per-crop standardization inside the exported graph (``PreprocessContract.normalization_in_model``).

The runtime then feeds ``resize_grey``'s output (grey in [0, 255]) straight to the artifact and skips the numpy
``standardize`` call: at batch 1 that call costs more than the few reductions cost inside a runtime's graph
(LiteRT: ~2.5 µs in the graph for a ~6-9 µs numpy call, model-runtime-requests R1). The arithmetic is
``eyesdk.preprocess.standardize``'s: zero mean, the standard deviation of the centred pixels, floored at
``std_floor * 255``.
"""

from __future__ import annotations

import torch
from torch import nn


class StandardizedInput(nn.Module):
    """``model(standardize(x))`` as one module: what every format exports when the contract says so."""

    def __init__(self, model: nn.Module, std_floor: float) -> None:
        super().__init__()
        self.model = model
        self.floor = float(std_floor) * 255.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        std = torch.sqrt((centred * centred).mean(dim=(2, 3), keepdim=True))
        return self.model(centred / torch.clamp(std, min=self.floor))
