"""Peer models run side by side with ours: a tiny adapter protocol and the Open Model Zoo ``open-closed-eye-0001``.

A peer is judged on *its own* contract, not ours: its own resize, normalisation and channel layout, reproduced from
its documentation. Feeding it our standardized crops would measure our preprocessing, not the peer. Its reported
latency is what a user of the peer pays per crop (its preprocessing of the same decoded crop + inference); the bare
``session.run`` on an already prepared input is reported beside it. Both ``eyesdk-bench`` and
``eyesdk-bench peer-latency`` build those two calls in one place (``latency.batch1_contestants``), from ``prepare``.

The OMZ contract (``../shared/peers/open-closed-eye-0001/README.md``): grey crop, plain bilinear resize to 32x32 (no
antialiasing, as ``cv2.resize`` INTER_LINEAR), replicated to 3 channels, NCHW float32 ``[1, 3, 32, 32]`` on input
``input.1``; ONNX takes ``(x - 127) / 255``, the IR has that folded in and takes raw 0..255. Output ``[1, 2, 1, 1]``,
already softmaxed, index 1 = open.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eyesdk.formats import FORMATS


class Peer(Protocol):
    """What the benchmark needs of a peer model; ``load`` is the registry function that builds one."""

    name: str  # e.g. "omz-open-closed-eye (onnx)"
    spec: str  # the --peer argument it came from
    format: str  # "onnx" | "openvino-ir" | ...
    path: Path
    runtime: str  # library that runs it, with version

    def prepare(self, grey: np.ndarray) -> np.ndarray:
        """The peer's own preprocessing of one grey (H, W) crop with values 0..255 -> its model input."""
        ...

    def session_run(self, x: np.ndarray) -> Any:
        """The bare inference call on a prepared input (what "session.run" latency times)."""
        ...

    def prob_open(self, x: np.ndarray) -> np.ndarray:
        """P(open) per crop, shape (N,), of a prepared input."""
        ...


@lru_cache(maxsize=256)
def bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of a plain bilinear resize with half-pixel centres and edge clamping, no antialiasing.

    This is ``cv2.resize(..., INTER_LINEAR)`` (up to OpenCV's fixed-point rounding of uint8) and
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False)``: each output pixel
    mixes the two nearest source pixels only, so a large downscale aliases, exactly as the peer saw in training.
    It is deliberately *not* ``eyesdk.preprocess.resize_weights`` (our antialiased triangle filter).
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got {n_in} -> {n_out}")
    src = np.clip((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(weights, (rows, lo), 1.0 - frac)
    np.add.at(weights, (rows, hi), frac)
    weights = weights.astype(np.float32)
    weights.setflags(write=False)
    return weights


def bilinear_resize(grey: np.ndarray, height: int, width: int) -> np.ndarray:
    """Grey (H, W) -> (height, width) float32 by :func:`bilinear_weights`, values kept in their input range."""
    h, w = grey.shape
    return bilinear_weights(h, height) @ np.asarray(grey, dtype=np.float32) @ bilinear_weights(w, width).T


def _dist_version(*names: str) -> str:
    from importlib import metadata

    for name in names:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return names[0]


class OmzOpenClosedEye:
    """``open-closed-eye-0001`` from an ONNX file (ONNX Runtime) or its OpenVINO IR (``.xml`` + ``.bin``)."""

    size = 32
    mean, scale = 127.0, 255.0  # the ONNX file's normalisation; the IR has it folded in

    def __init__(self, path: str | os.PathLike[str], threads: int = 1, spec: str = "") -> None:
        self.path = Path(path)
        self.spec = spec or f"omz-open-closed-eye:{self.path}"
        suffix = self.path.suffix.lower()
        if suffix == ".onnx":
            self.format = "onnx"
            self._normalize = True
            self.session_run = self._onnx_session(threads)
        elif suffix == ".xml":
            self.format = "openvino-ir"
            self._normalize = False
            self.session_run = self._ir_session(threads)
        else:
            raise ValueError(f"{self.path}: the omz-open-closed-eye peer is an .onnx file or an OpenVINO .xml IR")
        self.name = f"omz-open-closed-eye ({self.format})"

    def _onnx_session(self, threads: int) -> Callable[[np.ndarray], Any]:
        import onnxruntime as ort

        self.runtime = _dist_version(*FORMATS["onnx"].distributions)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own pybind error types; the user needs the file and the reason
            raise ValueError(f"{self.path}: onnxruntime cannot load it: {type(exc).__name__}: {exc}") from exc
        inputs = session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [3, self.size, self.size]:
            got = [(i.name, i.shape) for i in inputs]
            raise ValueError(f"{self.path}: expected one input [N, 3, 32, 32] (OMZ open-closed-eye), got {got}")
        name = inputs[0].name
        output = [session.get_outputs()[0].name]
        return lambda x: session.run(output, {name: x})[0]

    def _ir_session(self, threads: int) -> Callable[[np.ndarray], Any]:
        import openvino as ov

        self.runtime = _dist_version(*FORMATS["openvino"].distributions)
        core = ov.Core()
        # f32 hint: without it the CPU plugin runs the FP32 IR in bf16 on AMX CPUs (see docs/TOOLCHAIN notes).
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": int(threads),
                  "PERFORMANCE_HINT": "LATENCY"}
        try:
            compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise ValueError(f"{self.path}: OpenVINO cannot load it: {type(exc).__name__}: {exc}") from exc
        shape = compiled.inputs[0].get_partial_shape()
        if len(shape) != 4 or [d.get_length() for d in list(shape)[1:]] != [3, self.size, self.size]:
            raise ValueError(f"{self.path}: expected an input [N, 3, 32, 32] (OMZ open-closed-eye), got {shape}")
        request = compiled.create_infer_request()

        def run(x: np.ndarray) -> Any:
            request.infer({0: x})
            return request.get_output_tensor(0).data

        return run

    def prepare(self, grey: np.ndarray) -> np.ndarray:
        """Bilinear resize to 32x32, ``(x - 127) / 255`` for the ONNX file (raw for the IR), grey -> 3 channels."""
        if grey.ndim != 2:
            raise ValueError(f"the peer takes a grey (H, W) crop, got shape {grey.shape}")
        resized = bilinear_resize(grey, self.size, self.size)
        if self._normalize:
            resized = (resized - np.float32(self.mean)) / np.float32(self.scale)
        return np.ascontiguousarray(np.broadcast_to(resized, (1, 3, self.size, self.size)), dtype=np.float32)

    def prob_open(self, x: np.ndarray) -> np.ndarray:
        """Softmax output index 1 (open), copied out of the runtime's buffer."""
        out = np.array(self.session_run(x), dtype=np.float64)
        return out.reshape(out.shape[0], -1)[:, 1]


PEERS: dict[str, Callable[..., Peer]] = {"omz-open-closed-eye": OmzOpenClosedEye}


def check_peer_spec(spec: str) -> tuple[str, Path]:
    """Validate ``NAME:PATH`` without loading anything, so a typo fails before minutes of data loading."""
    name, sep, path = spec.partition(":")
    if not sep or not path:
        raise ValueError(f"peer spec {spec!r} must be NAME:PATH; known names: {', '.join(PEERS)}")
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r} in {spec!r}; known: {', '.join(PEERS)}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"peer file {file} does not exist (from --peer {spec})")
    return name, file


def load_peer(spec: str, threads: int = 1) -> Peer:
    """Build a peer from ``NAME:PATH`` (e.g. ``omz-open-closed-eye:open-closed-eye.onnx``)."""
    name, file = check_peer_spec(spec)
    return PEERS[name](file, threads=threads, spec=spec)
