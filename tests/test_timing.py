import numpy as np
import pytest

from eyesdk.timing import interleaved_us, summarize_us


def test_interleaved_counts_every_call_and_interleaves():
    order = []
    out = interleaved_us({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, calls=6, rounds=3,
                         warmup=1)
    assert {k: len(v) for k, v in out.items()} == {"a": 6, "b": 6}
    timed = order[2:]  # after one warm-up call each
    assert timed == ["a", "a", "b", "b"] * 3
    assert all((v >= 0).all() for v in out.values())


def test_interleaved_refuses_bad_counts():
    with pytest.raises(ValueError, match="calls must be >= 1"):
        interleaved_us({"a": lambda: None}, calls=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        interleaved_us({"a": lambda: None}, calls=1, warmup=-1)


def test_summarize():
    s = summarize_us(np.arange(1, 101, dtype=float))
    assert s["p50"] == pytest.approx(50.5) and s["mean"] == pytest.approx(50.5)
    assert summarize_us([]) == {"p50": None, "p90": None, "p99": None, "mean": None}
