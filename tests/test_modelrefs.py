"""eyesdk.modelrefs: an ONNX model that keeps tensor data in other files is found, wherever the tensor sits."""

from __future__ import annotations

import pytest

from eyesdk.modelrefs import MalformedModelError, files_named_by, onnx_external_data

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _external(name: str, location: str | None) -> TensorProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], [1.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    if location is not None:
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
    return tensor


def _model(initializers=(), node_tensor=None, subgraph_tensor=None, sparse=None) -> bytes:
    nodes = []
    if node_tensor is not None:
        nodes.append(helper.make_node("Constant", [], ["c"], value=node_tensor))
    if subgraph_tensor is not None:
        body = helper.make_graph([], "body", [], [helper.make_tensor_value_info("s", TensorProto.FLOAT, [1])],
                                 initializer=[subgraph_tensor])
        nodes.append(helper.make_node("If", ["cond"], ["o"], then_branch=body, else_branch=body))
    graph = helper.make_graph(nodes, "g", [], [], initializer=list(initializers),
                              sparse_initializer=[sparse] if sparse is not None else None)
    return helper.make_model(graph).SerializeToString()


def test_a_self_contained_model_names_nothing() -> None:
    inline = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, 2.0])
    assert onnx_external_data(_model([inline], node_tensor=inline)) == []
    assert files_named_by("onnx", _model([inline])) == []
    assert files_named_by("tflite", b"anything") == [] and files_named_by("openvino", b"<net/>") == []


@pytest.mark.parametrize("where", ["initializer", "node", "subgraph", "sparse"])
def test_external_data_is_found_wherever_the_tensor_is(where: str) -> None:
    tensor = _external("w", "../../x.data")
    if where == "initializer":
        data = _model([tensor])
    elif where == "node":
        data = _model(node_tensor=tensor)
    elif where == "subgraph":
        data = _model(subgraph_tensor=tensor)
    else:
        indices = helper.make_tensor("i", TensorProto.INT64, [1], [0])
        data = _model(sparse=helper.make_sparse_tensor(tensor, indices, [4]))
    expected = 2 if where == "subgraph" else 1  # the If node carries the body twice (then and else)
    assert onnx_external_data(data) == ["../../x.data"] * expected


def test_an_external_flag_without_a_location_is_still_external() -> None:
    assert onnx_external_data(_model([_external("w", None)])) == ["<external>"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x3a\xff\xff\xff\xff\x0f", "runs past the end of its message"),  # graph field claiming 4 GB
        (b"\x3a", "truncated or overlong varint"),
        (b"\x08" + b"\xff" * 11, "truncated or overlong varint"),
        (b"\x0b", "unexpected wire type 3"),
        (b"\x09\x00\x00", "runs past the end"),  # a 64-bit field with 2 bytes
    ],
)
def test_malformed_protobuf_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(MalformedModelError, match=message):
        files_named_by("onnx", data)
