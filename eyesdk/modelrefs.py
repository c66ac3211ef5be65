"""What a model file names besides itself: a bundle artifact must hold all of its bytes.

Only ONNX can point elsewhere: a tensor may keep its values in an external file (``data_location: EXTERNAL`` with a
``location`` such as ``../../x.data``), which some runtimes then open relative to the model - outside the verified
bundle (onnxruntime 1.16, which ``pyproject`` allows, reads it). OpenVINO IR weights live in the artifact's own
``.bin`` (a listed, verified sidecar handed over as bytes) and TFLite buffers live inside the flatbuffer: neither
format can name another file.

The ONNX check reads the protobuf wire format directly (numpy-only runtime: no ``onnx`` package), walking exactly
the messages that can hold tensors: graph initializers and sparse initializers, node attributes (tensors, sparse
tensors and subgraphs, recursively), functions and training graphs. Raw tensor bytes are skipped by length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

# For each message kind, the length-delimited fields that hold a message worth entering, and of what kind.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},  # ModelProto.graph, training_info, functions
    "training": {1: "graph", 2: "graph"},  # TrainingInfoProto.initialization, algorithm
    "function": {7: "node"},  # FunctionProto.node
    "graph": {1: "node", 5: "tensor", 15: "sparse"},  # GraphProto.node, initializer, sparse_initializer
    "node": {5: "attribute"},  # NodeProto.attribute
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},  # SparseTensorProto.values, indices
    "tensor": {},  # TensorProto: data_location (14) and external_data (13) are read in place
}
_TENSOR_DATA_LOCATION = 14  # TensorProto.data_location; 1 = EXTERNAL
_EXTERNAL = 1


class MalformedModelError(ValueError):
    """Bytes that are not a well-formed protobuf of the expected shape."""


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedModelError(f"truncated or overlong varint at byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) of one message's fields; length-delimited ones by range."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos, end)
            yield field, wire, value, pos
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise MalformedModelError(f"field {field} runs past the end of its message")
            yield field, wire, pos, pos + length
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise MalformedModelError(f"field {field} runs past the end of its message")
        else:  # groups (3, 4) are not used by ONNX; anything else is not protobuf
            raise MalformedModelError(f"unexpected wire type {wire} for field {field}")


def onnx_external_data(data: bytes) -> list[str]:
    """Locations named by tensors that keep their data outside the model ("<external>" when none is given)."""
    found: list[str] = []
    stack = [("model", 0, len(data))]
    while stack:
        kind, start, end = stack.pop()
        children = _CHILDREN[kind]
        external = False
        location = None
        for field, wire, a, b in _fields(data, start, end):
            if kind == "tensor" and field == _TENSOR_DATA_LOCATION and wire == 0:
                external = external or a == _EXTERNAL
            elif kind == "tensor" and field == 13 and wire == 2:
                external = True
                location = location or _entry_location(data, a, b)
            elif wire == 2 and field in children:
                stack.append((children[field], a, b))
        if external:
            found.append(location or "<external>")
    return found


def _entry_location(data: bytes, start: int, end: int) -> str | None:
    """The value of a StringStringEntryProto whose key is 'location'."""
    key = value = None
    for field, wire, a, b in _fields(data, start, end):
        if wire == 2 and field in (1, 2):
            text = data[a:b].decode("utf-8", errors="replace")
            key, value = (text, value) if field == 1 else (key, text)
    return value if key == "location" else None


_READERS: dict[str, Callable[[bytes], list[str]]] = {"onnx": onnx_external_data}


def files_named_by(fmt: str, data: bytes) -> list[str]:
    """Files a model of format ``fmt`` would make a runtime open besides itself; empty for a self-contained one.

    Raises MalformedModelError for a file that cannot even be walked: it is refused rather than handed to a runtime
    whose parser might read it differently.
    """
    reader = _READERS.get(fmt)
    return reader(data) if reader is not None else []
