"""Per-crop standardization inside the exported graph (``PreprocessContract.normalization_in_model``).

The runtime then feeds ``resize_grey``'s output (grey in [0, 255]) straight to the artifact and skips the numpy
``standardize`` call: at batch 1 that call costs more than the few reductions cost inside a runtime's graph
(LiteRT: ~0.6 µs in the graph for a 5-6 µs numpy call, docs/performance.md; model-runtime-requests R1). The
arithmetic is ``eyesdk.preprocess.standardize``'s: zero mean, the standard deviation of the centred pixels, floored at
``std_floor * 255``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: The wrapped network's submodule name: int8 quantizes what is inside it, the standardization stays float
#: (quantized, its squares of centred int8 pixels broke low-contrast crops: TFLite max |Δlogit| 3.07 vs 0.57).
NETWORK = "model"


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


def standardizes_input(model: Any) -> bool:
    """Whether ``model`` is the in-graph standardization wrapper (its int8 files keep that part float)."""
    return isinstance(model, StandardizedInput)


def float_outside(model: Any) -> str | None:
    """The submodule an int8 quantizer should annotate when ``model`` standardizes its input in the graph (the
    standardization in front stays float), or None: quantize the whole model."""
    return NETWORK if standardizes_input(model) else None


def before_first(ops: list[tuple[str, str]], kind: str) -> list[str]:
    """Names of the ops ahead of the first op of type ``kind``, from (type, name) in topological order: in a
    converted graph of the wrapper, the standardization in front of the network's first convolution."""
    names = []
    for op_type, name in ops:
        if op_type == kind:
            return names
        names.append(name)
    raise ValueError(f"the graph has no {kind} op; cannot tell its input standardization from the network")
