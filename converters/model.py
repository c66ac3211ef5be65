"""The eye-state networks: a small strided CNN with one "open" logit, and an optional ArcFace head.

Every model maps (N, 1, S, S) standardized crops to (N, 1) logits, where sigmoid(logit) = P(open). That single-logit
contract is what gets exported, whatever head was used in training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class EyeNet(nn.Module):
    """Plain CNN: one full-resolution conv, then stride-2 convs, global average pool, linear embedding -> logit."""

    def __init__(self, widths: Sequence[int] = (6, 12, 24, 48), extra: Sequence[int] = (), dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = [conv_bn(1, widths[0], 1)]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(conv_bn(c_in, c_out, 2))
        for c_out in extra:
            layers.append(conv_bn(widths[-1] if not layers else _out_channels(layers[-1]), c_out, 1))
        self.features = nn.Sequential(*layers)
        self.embedding_dim = _out_channels(layers[-1])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embedding_dim, 1)
        self.config = {"arch": "eyenet", "widths": list(widths), "extra": list(extra), "dropout": dropout}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


def _out_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


class ArcFaceEyeNet(nn.Module):
    """EyeNet body with an additive-angular-margin head over two class centres.

    The margin only enters the training loss (``margin_logits``). ``forward`` - used for validation, export and
    inference alike - is margin-free: s * (cos θ_open - cos θ_closed), one logit, so the softmax of the two cosine
    logits equals sigmoid(forward). That removes the original collapse (no-margin, unbalanced columns at eval).
    """

    def __init__(self, body: EyeNet, scale: float = 16.0, margin: float = 0.2):
        super().__init__()
        self.body = body
        self.embedding_dim = body.embedding_dim
        self.scale = scale
        self.margin = margin
        self.centers = nn.Parameter(torch.randn(2, body.embedding_dim) * 0.1)
        self.config = {**body.config, "head": "arcface", "scale": scale, "margin": margin}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.embed(x)

    def cosines(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(self.embed(x), dim=1), F.normalize(self.centers, dim=1))

    def margin_logits(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training-only (N, 2) logits with the angular margin added to the true class."""
        cos = self.cosines(x).clamp(-1 + 1e-6, 1 - 1e-6)
        theta = torch.acos(cos)
        onehot = F.one_hot(target.long().view(-1), 2).to(cos.dtype)
        return self.scale * torch.cos(theta + self.margin * onehot)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(x)
        return self.scale * (cos[:, 1:2] - cos[:, 0:1])


def build_model(head: str = "bce", widths: Sequence[int] = (6, 12, 24, 48), extra: Sequence[int] = (),
                dropout: float = 0.1, scale: float = 16.0, margin: float = 0.2) -> nn.Module:
    body = EyeNet(widths, extra, dropout)
    if head == "bce":
        return body
    if head == "arcface":
        return ArcFaceEyeNet(body, scale=scale, margin=margin)
    raise ValueError(f"unknown head {head!r}; choose 'bce' or 'arcface'")


def model_from_config(config: dict) -> nn.Module:
    head = config.get("head", "bce")
    return build_model(head, config["widths"], config.get("extra", ()), config.get("dropout", 0.0),
                       config.get("scale", 16.0), config.get("margin", 0.2))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (convs and linears; BN folds away at export)."""
    macs = 0

    def conv_hook(module: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        k = math.prod(module.kernel_size) * module.in_channels // module.groups
        macs += k * out.numel()

    def linear_hook(module: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal macs
        macs += module.in_features * out.numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs
