"""eyesdk.backends.base: what every backend shares - verified bytes in, the thread bound, the fork gate."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from eyesdk.backends import base
from eyesdk.backends.base import CallGate, ModelFiles, check_threads, usable_cpus


def test_threads_are_bounded_by_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_threads(1) == 1 and check_threads(usable_cpus()) == usable_cpus()
    monkeypatch.setattr(base, "usable_cpus", lambda: 4)
    assert check_threads(4) == 4
    for bad in (0, 5, 100_000, -1, True, 2.0, "2", None):
        with pytest.raises(ValueError, match=r"threads must be an int in 1\.\.4 \(this machine has 4 CPUs\), got"):
            check_threads(bad)


def test_usable_cpus_follows_the_affinity_mask() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity masks here")
    assert usable_cpus() == len(os.sched_getaffinity(0)) <= (os.cpu_count() or 1)


def test_model_files_of_an_unbundled_artifact_follow_the_format_table(tmp_path: Path) -> None:
    (tmp_path / "m.xml").write_bytes(b"<net/>")
    (tmp_path / "m.bin").write_bytes(b"\x00\x01")
    files = ModelFiles.read(tmp_path / "m.xml", "openvino")
    assert (files.name, files.main, files.sidecars) == ("m.xml", b"<net/>", (b"\x00\x01",))
    assert "6 bytes + 1 sidecar" in repr(files)
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    assert ModelFiles.read(tmp_path / "m.onnx", "onnxruntime").sidecars == ()


def test_the_call_gate_waits_for_calls_in_flight_and_holds_new_ones() -> None:
    gate = CallGate()
    mine = gate.lock()  # this thread has called before
    inside, release, order = threading.Event(), threading.Event(), []

    def call() -> None:
        with gate.lock():
            inside.set()
            release.wait(5)
            order.append("call finished")

    worker = threading.Thread(target=call)
    worker.start()
    inside.wait(5)
    closer = threading.Thread(target=lambda: (gate.close(5), order.append("closed")))
    closer.start()
    closer.join(0.2)
    assert order == [] and closer.is_alive()  # close() waits while a call is inside
    release.set()
    worker.join(5)
    closer.join(5)
    assert order == ["call finished", "closed"]
    assert not mine.acquire(blocking=False)  # held: a new call waits until the fork is done
    gate.open()
    with gate.lock():
        pass


def test_the_call_gate_gives_up_on_a_call_that_never_ends() -> None:
    gate = CallGate()
    stuck = gate.lock()
    stuck.acquire()
    assert gate.close(0.05) is False
    gate.open()
    stuck.release()


def test_a_runner_that_cannot_survive_fork_refuses_in_the_child() -> None:
    class Runner(base.BaseRunner):
        name = "fake"

        def _open(self) -> None:
            self.opened = getattr(self, "opened", 0) + 1

        def _run_direct(self, batch):
            import numpy as np

            return np.zeros(batch.shape[0], np.float32)

        def _fork_refusal(self) -> str | None:
            return "fake cannot be forked: use spawn" if self._threads > 1 else None

    import numpy as np

    ok, refusing = Runner(ModelFiles("m", b""), 1), Runner(ModelFiles("m", b""), min(2, usable_cpus()))
    batch = np.zeros((2, 1, 8, 8), np.float32)
    for runner in (ok, refusing):
        runner._after_fork_in_child(quiesced=True)  # what the fork hook does in a child
    assert ok.run(batch).shape == (2,) and ok.opened == 2  # re-created from its bytes on the first call
    if refusing._threads > 1:
        with pytest.raises(RuntimeError, match="fake cannot be forked: use spawn"):
            refusing.run(batch)
    stalled = Runner(ModelFiles("m", b""), 1)
    stalled._after_fork_in_child(quiesced=False)
    with pytest.raises(RuntimeError, match=r"forked while a fake call ran for over 30 s .* 'spawn' method"):
        stalled.run(batch)
