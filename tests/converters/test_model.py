"""Layer specs: parsing, the classic widths, checkpoint compatibility and the exported single-logit contract."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from eyesdk.converters.flops import count_macs  # noqa: E402
from eyesdk.converters.model import (  # noqa: E402
    EyeNet,
    Layer,
    build_model,
    layers_from_widths,
    model_from_config,
    parse_layers,
)


def test_spec_round_trips_and_builds_each_kind() -> None:
    layers = parse_layers("p16/2, c32/2 d64/2 d64")
    assert layers == (Layer("p", 16, 2), Layer("c", 32, 2), Layer("d", 64, 2), Layer("d", 64))
    model = EyeNet(layers).eval()
    assert model.config["layers"] == "p16/2 c32/2 d64/2 d64"
    assert model.embedding_dim == 64
    assert model(torch.zeros(3, 1, 24, 24)).shape == (3, 1)
    # depthwise block = 3x3 depthwise (groups = channels in) + 1x1 pointwise
    dw = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert [m.groups for m in dw] == [32, 64]


def test_classic_widths_are_the_same_network_as_before() -> None:
    assert layers_from_widths((6, 12, 24, 48), (32,)) == parse_layers("c6 c12/2 c24/2 c48/2 c32")
    net = build_model(widths=(6, 12, 24, 48))
    assert count_macs(net, 24) == 311_088  # docs/model-card.md, the shipped 24 px model
    assert EyeNet((4, 8)).config["layers"] == "c4 c8/2"


def test_old_checkpoint_config_with_widths_loads_into_the_same_weights() -> None:
    old_config = {"arch": "eyenet", "widths": [4, 8, 16], "extra": [8], "dropout": 0.1, "head": "bce"}
    source = build_model(widths=(4, 8, 16), extra=(8,))
    rebuilt = model_from_config(old_config)
    rebuilt.load_state_dict(source.state_dict())  # same parameter names and shapes
    new = model_from_config(source.config)
    new.load_state_dict(source.state_dict())
    x = torch.randn(2, 1, 24, 24)
    assert torch.allclose(rebuilt.eval()(x), source.eval()(x))


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty layer spec"),
    ("c16/2 x8", r"bad layer token 'x8'"),
    ("c16//2", r"bad layer token 'c16//2'"),
    ("c0", "channels and stride must be >= 1"),
])
def test_bad_specs_are_refused_with_the_token(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_layers(spec)


def test_widths_must_name_a_layer() -> None:
    with pytest.raises(ValueError, match="widths must name at least one layer"):
        layers_from_widths(())
