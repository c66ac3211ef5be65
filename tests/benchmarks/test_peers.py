"""Peer adapters (benchmarks/peers.py): the OMZ open-closed-eye contract on a synthetic model with its interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eyesdk.benchmarks.peers import OmzOpenClosedEye, bilinear_resize, bilinear_weights, load_peer


def test_bilinear_halving_averages_pixel_pairs() -> None:
    # Downscale by 2 with half-pixel centres: output i samples source 2i + 0.5, i.e. the mean of pixels 2i, 2i+1.
    w = bilinear_weights(64, 32)
    expected = np.zeros((32, 64), np.float32)
    expected[np.arange(32), 2 * np.arange(32)] = 0.5
    expected[np.arange(32), 2 * np.arange(32) + 1] = 0.5
    np.testing.assert_array_equal(w, expected)


def test_bilinear_identity_upscale_and_edges() -> None:
    np.testing.assert_array_equal(bilinear_weights(32, 32), np.eye(32, dtype=np.float32))
    up = bilinear_weights(2, 4)  # sources at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    np.testing.assert_allclose(up, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    assert np.allclose(bilinear_weights(90, 32).sum(axis=1), 1.0)
    assert (np.count_nonzero(bilinear_weights(90, 32), axis=1) <= 2).all()  # two taps: no antialiasing


def test_bilinear_matches_torch_interpolate_without_antialias() -> None:
    torch = pytest.importorskip("torch")
    grey = np.random.default_rng(0).integers(0, 256, (90, 72)).astype(np.float32)
    ours = bilinear_resize(grey, 32, 32)
    theirs = torch.nn.functional.interpolate(torch.from_numpy(grey)[None, None], size=(32, 32), mode="bilinear",
                                             align_corners=False, antialias=False)[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_bilinear_weights_refuse_empty_sizes() -> None:
    with pytest.raises(ValueError, match="sizes must be positive"):
        bilinear_weights(0, 32)


def test_onnx_peer_follows_the_omz_contract(omz_like_onnx: Path) -> None:
    peer = OmzOpenClosedEye(omz_like_onnx)
    grey = np.full((64, 64), 200, np.uint8)
    x = peer.prepare(grey)
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x, (200 - 127) / 255, rtol=1e-6)  # (x - 127) / 255 on every channel
    p = peer.prob_open(x)
    expected = 1 / (1 + np.exp(-2 * 4.0 * (200 - 127) / 255))  # the synthetic model: softmax(-4m, 4m)[1]
    assert p.shape == (1,) and p[0] == pytest.approx(expected, rel=1e-5)
    assert peer.prob_open(peer.prepare(np.full((40, 50), 20, np.uint8)))[0] < 0.5  # dark -> closed
    assert peer.name == "omz-open-closed-eye (onnx)" and peer.format == "onnx" and "onnxruntime" in peer.runtime


def test_ir_peer_takes_raw_pixel_values(omz_like_onnx: Path, tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    xml = tmp_path / "omz_like.xml"
    ov.save_model(ov.Core().read_model(str(omz_like_onnx)), str(xml), compress_to_fp16=False)  # no converter fork
    peer = OmzOpenClosedEye(xml)
    x = peer.prepare(np.full((48, 48), 100, np.uint8))
    np.testing.assert_allclose(x, 100.0)  # normalisation is folded into the OMZ IR: raw 0..255 goes in
    expected = 1 / (1 + np.exp(-2 * 4.0 * 100.0))
    assert peer.prob_open(x)[0] == pytest.approx(expected) and peer.format == "openvino-ir"


def test_peer_prepare_refuses_colour(omz_like_onnx: Path) -> None:
    with pytest.raises(ValueError, match=r"takes a grey \(H, W\) crop"):
        OmzOpenClosedEye(omz_like_onnx).prepare(np.zeros((32, 32, 3), np.uint8))


def test_load_peer_spec(omz_like_onnx: Path, tmp_path: Path) -> None:
    peer = load_peer(f"omz-open-closed-eye:{omz_like_onnx}")
    assert peer.spec == f"omz-open-closed-eye:{omz_like_onnx}" and peer.path == omz_like_onnx
    with pytest.raises(ValueError, match="must be NAME:PATH"):
        load_peer("omz-open-closed-eye")
    with pytest.raises(ValueError, match="unknown peer 'mediapipe'.*known: omz-open-closed-eye"):
        load_peer(f"mediapipe:{omz_like_onnx}")
    with pytest.raises(FileNotFoundError, match="peer file .* does not exist"):
        load_peer(f"omz-open-closed-eye:{tmp_path / 'missing.onnx'}")
    other = tmp_path / "model.pb"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"is an \.onnx file or an OpenVINO \.xml IR"):
        load_peer(f"omz-open-closed-eye:{other}")


def test_unreadable_peer_file_names_the_runtime(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="broken.onnx: onnxruntime cannot load it"):
        OmzOpenClosedEye(broken)
    xml = tmp_path / "broken.xml"
    xml.write_text("<net>")
    with pytest.raises(ValueError, match="broken.xml: OpenVINO cannot load it"):
        OmzOpenClosedEye(xml)


def test_onnx_peer_refuses_another_input_shape(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["input.1"], ["out"])], "g",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 1, 64, 64])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 64, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = tmp_path / "other.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match=r"expected one input \[N, 3, 32, 32\]"):
        OmzOpenClosedEye(path)
