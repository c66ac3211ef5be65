"""What the benchmarks time (benchmarks/latency.py): the crop, batch-1 contestants, batch rates, cold start, imports.

The timer itself is ``eyesdk.timing.interleaved_us`` (tests/test_timing.py); here: that each contestant calls what
its name says, with the input its contract says.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from eyesdk.benchmarks import latency


def test_synthetic_crop_is_a_deterministic_uint8_eye() -> None:
    crop = latency.synthetic_crop()
    assert crop.shape == (latency.CROP_SIDE, latency.CROP_SIDE) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, latency.synthetic_crop())
    centre, corner = crop[40:50, 40:50].mean(), crop[:10, :10].mean()
    assert centre < corner - 60  # a dark iris in a bright surround
    assert latency.synthetic_crop(40, seed=1).shape == (40, 40)


def test_batch_stack_shape_and_dtype() -> None:
    crop = latency.synthetic_crop(90)
    stack = latency.batch_stack(crop, 8)
    assert stack.shape == (8, 90, 90) and stack.dtype == np.uint8
    assert np.abs(stack.astype(int) - crop.astype(int)).max() <= 3
    assert not np.array_equal(stack[0], stack[1])  # no layer can cache one answer for the whole stack


def test_throughput_and_calls_per_batch() -> None:
    assert latency.throughput_per_s(500.0, 64) == pytest.approx(128_000)
    assert latency.throughput_per_s(None, 8) is None
    assert latency.throughput_per_s(float("nan"), 8) is None and latency.throughput_per_s(0.0, 8) is None
    assert latency.calls_for_batch(1000, 64) == 16 and latency.calls_for_batch(20, 64) == 5


def test_timed_returns_the_result_and_milliseconds() -> None:
    value, ms = latency.timed(lambda: 42)
    assert value == 42 and 0 <= ms < 1000


def test_import_runtime_imports_the_backend_once() -> None:
    from eyesdk.backends import available_backends
    from eyesdk.formats import format_of_backend

    for backend in available_backends():
        assert latency.import_runtime(backend) >= 0
        assert any(m in sys.modules for m in format_of_backend(backend).load_modules)
        assert latency.import_runtime(backend) < 5  # already imported: about 0


class FakePeer:
    """A peer whose contract is recognisable: ``prepare`` negates the crop."""

    name = "fake"

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def prepare(self, grey: np.ndarray) -> np.ndarray:
        return -np.asarray(grey, np.float32)

    def session_run(self, x: np.ndarray) -> np.ndarray:
        self.runs.append(x)
        return np.zeros((1, 2))

    def prob_open(self, x: np.ndarray) -> np.ndarray:
        self.session_run(x)
        return np.zeros(1)


class FakeState:
    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def predict(self, crop: np.ndarray) -> None:
        self.seen.append(crop)

    def predict_batch(self, stack: np.ndarray) -> None:
        self.seen.append(stack)


def test_batch1_contestants_feed_the_peer_its_own_contract() -> None:
    crop = latency.synthetic_crop(32)
    ours, peer = FakeState(), FakePeer()
    calls = latency.batch1_contestants({"tflite fp32": ours}, [peer], crop)
    assert list(calls) == ["tflite fp32", "peer:fake", "peer-run:fake"]
    calls["tflite fp32"]()
    assert ours.seen[0] is crop  # our side: the whole public call on the decoded crop
    calls["peer-run:fake"]()
    np.testing.assert_array_equal(peer.runs[-1], -crop.astype(np.float32))  # prepared by Peer.prepare, once
    prepared = peer.runs[-1]
    calls["peer-run:fake"]()
    assert peer.runs[-1] is prepared
    calls["peer:fake"]()
    assert peer.runs[-1] is not prepared  # the whole call prepares again, as a user of the peer pays


def test_batch_rates_time_predict_batch_on_the_stack() -> None:
    stack = latency.batch_stack(latency.synthetic_crop(16), 4)
    state = FakeState()
    rates = latency.batch_rates({"a": state}, stack, runs=40, rounds=3)
    assert set(rates) == {"a"} and rates["a"] > 0
    assert all(x is stack for x in state.seen) and len(state.seen) == 2 + latency.calls_for_batch(40, 4)
    assert latency.batch_rates({}, stack, runs=10) == {}


def test_batch_times_count_the_calls() -> None:
    stack = latency.batch_stack(latency.synthetic_crop(16), 8)
    times = latency.batch_times({"a": FakeState(), "b": FakeState()}, stack, runs=80, rounds=4)
    assert {k: len(v) for k, v in times.items()} == {"a": 10, "b": 10}
