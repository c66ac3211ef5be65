"""The eye-state networks: a small CNN described by a layer spec, with one "open" logit, and an optional ArcFace head.

Every model maps (N, 1, S, S) standardized crops to (N, 1) logits, where sigmoid(logit) = P(open). That single-logit
contract is what gets exported, whatever head was used in training.

A network body is a sequence of layers written as a short spec, one token per layer, ``<kind><channels>[/<stride>]``:

* ``c16/2`` - 3x3 convolution (BatchNorm, ReLU), 16 output channels, stride 2;
* ``d32/2`` - depthwise-separable block: 3x3 depthwise conv at the stride, then a 1x1 pointwise conv (each BN + ReLU);
* ``p16/2`` - patchify: a k x k convolution with stride k (k = the stride), an early downsampling stem that costs a
  quarter of a full-resolution 3x3 conv's work and keeps every later layer at a channel count CPU kernels like.

The former ``EyeNet(widths, extra)`` is the spec ``c<w0> c<w1>/2 ... c<wn>/2 c<e0> ...`` (see ``layers_from_widths``),
so checkpoints and bundles written with ``widths`` still load.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

LAYER_KINDS = {"c": "3x3 conv", "d": "depthwise-separable 3x3", "p": "patchify k x k, stride k"}
_TOKEN = re.compile(r"^(?P<kind>[a-z])(?P<out>\d+)(?:/(?P<stride>\d+))?$")


@dataclass(frozen=True)
class Layer:
    kind: str
    out: int
    stride: int = 1

    def __str__(self) -> str:
        return f"{self.kind}{self.out}" + (f"/{self.stride}" if self.stride != 1 else "")


def parse_layers(spec: str | Sequence[str]) -> tuple[Layer, ...]:
    """``"p16/2 c32/2 d64/2"`` (or a list of tokens) -> Layers; raises ValueError naming the bad token."""
    tokens = spec.replace(",", " ").split() if isinstance(spec, str) else list(spec)
    if not tokens:
        raise ValueError("empty layer spec; expected tokens like 'c16/2 d32/2' (kinds: "
                         + ", ".join(f"{k} = {v}" for k, v in LAYER_KINDS.items()) + ")")
    layers = []
    for token in tokens:
        m = _TOKEN.match(str(token).strip())
        if m is None or m["kind"] not in LAYER_KINDS:
            raise ValueError(f"bad layer token {token!r}; expected <kind><channels>[/<stride>] with kind in "
                             f"{sorted(LAYER_KINDS)}, e.g. 'c16/2'")
        out, stride = int(m["out"]), int(m["stride"] or 1)
        if out < 1 or stride < 1:
            raise ValueError(f"bad layer token {token!r}: channels and stride must be >= 1")
        layers.append(Layer(m["kind"], out, stride))
    return tuple(layers)


def as_layers(layers: str | Sequence[str] | Sequence[Layer] | Sequence[int]) -> tuple[Layer, ...]:
    """A spec string, tokens, Layers, or classic EyeNet widths (ints) -> Layers."""
    items = layers.replace(",", " ").split() if isinstance(layers, str) else list(layers)
    if items and all(isinstance(v, Layer) for v in items):
        return tuple(items)
    if items and all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return layers_from_widths(items)
    return parse_layers([str(v) for v in items])


def format_layers(layers: Sequence[Layer]) -> str:
    return " ".join(str(layer) for layer in layers)


def layers_from_widths(widths: Sequence[int], extra: Sequence[int] = ()) -> tuple[Layer, ...]:
    """The classic EyeNet: one full-resolution 3x3 conv, stride-2 3x3 convs, then stride-1 extras."""
    if not widths:
        raise ValueError("widths must name at least one layer")
    return (Layer("c", widths[0]), *(Layer("c", w, 2) for w in widths[1:]), *(Layer("c", w) for w in extra))


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2 if kernel % 2 else 0, groups=groups,
                      bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def make_layer(layer: Layer, c_in: int) -> nn.Sequential:
    if layer.kind == "c":
        return nn.Sequential(*_conv_bn(c_in, layer.out, 3, layer.stride))
    if layer.kind == "d":
        return nn.Sequential(*_conv_bn(c_in, c_in, 3, layer.stride, groups=c_in), *_conv_bn(c_in, layer.out, 1, 1))
    if layer.kind == "p":
        return nn.Sequential(*_conv_bn(c_in, layer.out, layer.stride, layer.stride))
    raise ValueError(f"unknown layer kind {layer.kind!r}; choose from {sorted(LAYER_KINDS)}")


class EyeNet(nn.Module):
    """Layers from a spec, global average pool, linear embedding -> logit."""

    def __init__(self, layers: str | Sequence[str] | Sequence[Layer] | Sequence[int] = "c6 c12/2 c24/2 c48/2",
                 dropout: float = 0.1):
        super().__init__()
        parsed = as_layers(layers)
        blocks: list[nn.Module] = []
        c_in = 1
        for layer in parsed:
            blocks.append(make_layer(layer, c_in))
            c_in = layer.out
        self.features = nn.Sequential(*blocks)
        self.embedding_dim = c_in
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embedding_dim, 1)
        self.config = {"arch": "eyenet", "layers": format_layers(parsed), "dropout": dropout}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


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
                dropout: float = 0.1, scale: float = 16.0, margin: float = 0.2,
                layers: str | Sequence[str] | None = None) -> nn.Module:
    """A model from either a layer spec (``layers``) or the classic ``widths`` + ``extra``."""
    body = EyeNet(layers if layers else layers_from_widths(widths, extra), dropout)
    if head == "bce":
        return body
    if head == "arcface":
        return ArcFaceEyeNet(body, scale=scale, margin=margin)
    raise ValueError(f"unknown head {head!r}; choose 'bce' or 'arcface'")


def model_from_config(config: dict) -> nn.Module:
    """Rebuild a model from the ``config`` a checkpoint or manifest recorded (layer spec, or the older widths)."""
    head = config.get("head", "bce")
    return build_model(head, config.get("widths", ()), config.get("extra", ()), config.get("dropout", 0.0),
                       config.get("scale", 16.0), config.get("margin", 0.2), layers=config.get("layers"))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
