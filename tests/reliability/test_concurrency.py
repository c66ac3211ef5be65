"""Concurrency: one EyeState shared by many threads, and one tuning cache shared by many processes.

tests/test_api.py::test_predict_is_thread_safe already runs 8 threads of ``predict`` per backend x precision, and
tests/test_tune.py::test_concurrent_writers_leave_one_whole_file runs 27 *threads* writing the cache. What they leave
out, added here:

- ``predict``, ``predict_batch`` (several batch sizes, including more crops than a fixed-batch file holds) and
  ``logits`` interleaved on one EyeState from many threads, on every backend x precision, compared bit for bit with
  the same calls made sequentially: this is where a shared buffer (OpenVINO's per-thread requests, the LiteRT lock,
  the fixed-batch loop) would show;
- EyeStates built concurrently from one bundle;
- the tuning cache written by several *processes* at once (``os.replace`` atomicity is a property of the file system,
  which threads of one process do not fully exercise), with readers in each, and with a process that keeps writing
  garbage into the same file non-atomically.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic import synthetic_eye

import eyesdk
from eyesdk import tune
from eyesdk.bundle import load_bundle
from eyesdk.device import probe
from eyesdk.formats import FORMATS, PRECISIONS

COMBOS = [(f.backend, p) for f in FORMATS.values() for p in PRECISIONS]
THREADS = 6
ROUNDS = 12


def _workload() -> list[tuple[str, Any]]:
    """Mixed calls: single crops of several sizes, lists and stacks of 1..5 crops, a preprocessed probe slice."""
    rng = np.random.default_rng(11)
    crops = [synthetic_eye(i % 2 == 0, (30 + 7 * i, 44 + 5 * i), rng) for i in range(5)]
    same = [synthetic_eye(i % 3 == 0, (48, 64), rng) for i in range(5)]
    return [
        *[("predict", c) for c in crops],
        ("predict", np.dstack([crops[0]] * 3)[::-1]),  # a colour, non-contiguous view
        ("batch", crops[:3]),  # mixed sizes: one preprocess per crop
        ("batch", np.stack(same)),  # one vectorised preprocess, 5 crops in one backend call
        ("batch", np.stack(same[:1])),
        ("batch", [same[4], crops[1]]),
        ("logits", None),  # filled with the bundle's probe below
    ]


def _call(es: eyesdk.EyeState, kind: str, arg: Any) -> tuple[float, ...]:
    if kind == "predict":
        return (es.predict(arg).logit,)
    if kind == "batch":
        return tuple(r.logit for r in es.predict_batch(arg))
    return tuple(es.logits(arg).tolist())


@pytest.mark.parametrize(("backend", "precision"), COMBOS, ids=[f"{b}-{p}" for b, p in COMBOS])
def test_mixed_calls_from_many_threads_match_sequential_results(
    tiny_bundle: Path, backend: str, precision: str
) -> None:
    if backend not in eyesdk.available_backends():
        pytest.skip(f"{backend} is not installed here")
    es = eyesdk.EyeState(model=tiny_bundle, backend=backend, precision=precision)
    work = [(k, es.bundle.probe()[:7] if k == "logits" else a) for k, a in _workload()]
    expected = [_call(es, kind, arg) for kind, arg in work]
    results: dict[int, list[tuple[float, ...]]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(k: int) -> None:
        barrier.wait()
        try:  # each thread walks the workload from its own offset, so different calls overlap
            results[k] = [_call(es, *work[(i + k) % len(work)]) for i in range(ROUNDS * len(work) // 4)]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == []
    for k, got in results.items():
        assert got == [expected[(i + k) % len(work)] for i in range(len(got))], f"thread {k} saw other numbers"
    assert len(results) == THREADS


def test_eyestates_built_concurrently_agree(tiny_bundle: Path) -> None:
    """Several threads loading the same bundle at once (selection, probe parity, backend load) end up identical."""
    crop = synthetic_eye(True, (40, 60), np.random.default_rng(5))
    states: list[eyesdk.EyeState] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def build() -> None:
        barrier.wait()
        try:
            states.append(eyesdk.EyeState(model=tiny_bundle))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(states) == 4
    assert len({(s.backend, s.precision) for s in states}) == 1
    assert len({s.predict(crop).logit for s in states}) == 1


# -- the tuning cache across processes --------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import json, logging, os, sys, time
    from eyesdk import tune
    from eyesdk.bundle import load_bundle
    from eyesdk.device import probe

    bundle_path, backend, precision, go, ready, writes = sys.argv[1:7]
    bundle, device = load_bundle(bundle_path), probe()
    warnings = []

    class Collect(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    logging.getLogger("eyesdk").addHandler(Collect())
    result = tune.TuneResult(backend, precision, {f"{backend} {precision}": 1.0}, threads=1,
                             fingerprint=device.fingerprint, bundle_sha256=bundle.sha256)
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    seen, misses = set(), 0
    for _ in range(int(writes)):
        tune.write_cache(result, bundle, device)
        got = tune.read_cache(bundle, 1, device)
        if got is None:
            misses += 1
        else:
            seen.add(f"{got.backend} {got.precision}")
    print(json.dumps({"warnings": warnings, "misses": misses, "seen": sorted(seen)}))
    """
)

_CORRUPTER = textwrap.dedent(
    """
    import os, sys, time
    path, go, ready, stop = sys.argv[1:5]
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    junk = [b"", b"{", b'{"schema": "eyesdk.tune/1", "backend": "tflite"', b"\\xff\\xfe\\x00", b"[]", b"null"]
    i = 0
    while not os.path.exists(stop):
        with open(path, "wb") as handle:  # not atomic on purpose: readers may see any prefix of any of these
            handle.write(junk[i % len(junk)])
        i += 1
    print(i)
    """
)


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _writer(bundle: Path, choice: tuple[str, str], go: Path, ready: Path, writes: int = 150) -> subprocess.Popen[str]:
    return _spawn(_WRITER, str(bundle), *choice, str(go), str(ready), str(writes))


def _start_together(tmp_path: Path, procs: list[subprocess.Popen[str]], ready: list[Path]) -> Path:
    """Wait until every process has imported and loaded, then release them at once."""
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready):
        assert time.monotonic() < deadline, "writer processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    go = tmp_path / "go"
    go.touch()
    return go


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


WRITERS = [("tflite", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp16"), ("onnxruntime", "fp32")]


def test_processes_writing_one_cache_file_never_tear_it(tiny_bundle: Path, private_cache: Path, tmp_path: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(len(WRITERS))]
    procs = [_writer(tiny_bundle, choice, go, r) for choice, r in zip(WRITERS, ready, strict=True)]
    _start_together(tmp_path, procs, ready)
    reports = [json.loads(_finish(p)) for p in procs]
    assert [r["warnings"] for r in reports] == [[]] * len(WRITERS), "a reader saw a torn or foreign file"
    assert [r["misses"] for r in reports] == [0] * len(WRITERS)
    written = {f"{b} {p}" for b, p in WRITERS}
    assert set().union(*(r["seen"] for r in reports)) <= written
    assert tune.cached_choice(bundle) in set(WRITERS)
    assert [p.name for p in private_cache.iterdir()] == [tune.cache_path(bundle).name]  # no temp files left over


def test_a_process_scribbling_on_the_cache_breaks_nobody(
    tiny_bundle: Path, private_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Readers meet every prefix of garbage: each read is a valid result or None with a log line, never an
    exception; once the scribbler stops, the next write stands and EyeState uses it."""
    bundle = load_bundle(tiny_bundle)
    path = tune.cache_path(bundle)
    path.parent.mkdir(parents=True)
    go, stop = tmp_path / "go", tmp_path / "stop"
    ready = [tmp_path / f"ready{i}" for i in range(3)]
    procs = [_writer(tiny_bundle, choice, go, r) for choice, r in zip(WRITERS[:2], ready[:2], strict=True)]
    procs.append(_spawn(_CORRUPTER, str(path), str(go), str(ready[2]), str(stop)))
    _start_together(tmp_path, procs, ready)
    reports = [json.loads(_finish(p)) for p in procs[:2]]
    stop.touch()
    assert int(_finish(procs[2])) > 0
    for report in reports:  # every miss was logged, and every logged reason is one of the documented ones
        assert len(report["warnings"]) >= report["misses"]
        assert all(w.startswith("eyesdk: ignoring") for w in report["warnings"])
    assert sum(r["misses"] for r in reports) > 0, "the scribbler never got in the way: the test proved nothing"

    with caplog.at_level("WARNING", logger="eyesdk"):
        tune.cached_choice(bundle)  # whatever the scribbler left: a choice or None, never an exception
    device = probe()
    tune.write_cache(tune.TuneResult("openvino", "int8", {}, threads=1, fingerprint=device.fingerprint,
                                     bundle_sha256=bundle.sha256), bundle, device)
    es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) == ("openvino", "int8")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('"p50_us": [1, 2]', "'p50_us' is a list, not an object"),
        ('"rejected": "tflite fp32"', "'rejected' is a str, not an object"),
    ],
)
def test_cache_with_malformed_fields_is_ignored_not_fatal(
    tiny_bundle: Path, content: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Found here: a cache with the right keys but a list where an object belongs made ``EyeState()`` raise
    (``dict([1, 2])``) instead of ignoring the file as the module promises."""
    bundle = load_bundle(tiny_bundle)
    device = probe()
    data = tune.TuneResult("openvino", "int8", {}, threads=1, fingerprint=device.fingerprint,
                           bundle_sha256=bundle.sha256).to_dict()
    data.update(json.loads("{" + content + "}"))
    text = json.dumps(data)
    path = tune.cache_path(bundle)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with caplog.at_level("WARNING", logger="eyesdk"):
        assert tune.cached_choice(bundle) is None
        es = eyesdk.EyeState(model=tiny_bundle)
    assert (es.backend, es.precision) != ("openvino", "int8")
    assert any(reason in r.getMessage() for r in caplog.records)


def test_autotune_survives_a_cache_it_cannot_write(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache is an optimisation: a read-only or full cache directory costs a re-tune next start, not a crash."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("EYESDK_CACHE_DIR", str(blocker / "eyesdk"))
    monkeypatch.setattr(tune, "time_runners", lambda runners, sample, rounds=7, calls=60: {
        key: (1.0 if key == "onnxruntime fp16" else 9.0) for key in runners})
    with caplog.at_level("WARNING", logger="eyesdk"):
        es = eyesdk.EyeState(model=tiny_bundle, autotune=True)
    assert (es.backend, es.precision) == ("onnxruntime", "fp16")
    assert any("could not cache the tuning result" in r.getMessage() for r in caplog.records)


# -- fork (issue 14 #10) ---------------------------------------------------------------------------------------------

_FORK_DRIVER = """
import gc, os, signal, sys, threading, time
import numpy as np
import eyesdk

backend, threads, forks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
batches = len(sys.argv) > 5 and sys.argv[5] == "batches"  # the parent's busy thread runs pipelined batches
es = eyesdk.EyeState(model=sys.argv[4], backend=backend, precision="fp32", threads=threads)
crop = np.random.default_rng(0).integers(0, 256, (40, 60), dtype=np.uint8)
expected = es.predict(crop).logit
stack = np.random.default_rng(1).integers(0, 256, (72, 40, 60), dtype=np.uint8)
expected_batch = [r.logit for r in es.predict_batch(stack)]
stop = False

def busy():
    while not stop:
        es.predict_batch(stack) if batches else es.predict(crop)

worker = threading.Thread(target=busy, daemon=True)
worker.start()
outcomes = []
for _ in range(forks):
    time.sleep(0.003)
    pid = os.fork()
    if pid == 0:  # the child: another thread was (often) inside the runtime when it was forked
        signal.alarm(10)
        try:
            ok = es.predict(crop).logit == expected and len(es.predict_batch([crop] * 3)) == 3
            ok = ok and [r.logit for r in es.predict_batch(stack)] == expected_batch
            code = 0 if ok else 3
        except eyesdk.BackendRuntimeError as exc:
            print("child refused:", exc, flush=True)
            code = 5
        except Exception as exc:
            print("child:", type(exc).__name__, exc, flush=True)
            code = 4
        gc.collect()  # freeing what the parent's runtime built aborted OpenVINO children
        os._exit(code)  # as multiprocessing's workers leave (onnxruntime's own exit handlers hang in a forked child)
    _, status = os.waitpid(pid, 0)
    outcomes.append("hung" if os.WIFSIGNALED(status) else
                    {0: "ok", 3: "wrong", 5: "refused"}.get(os.WEXITSTATUS(status), "error"))
stop = True
worker.join()
print("outcomes", " ".join(outcomes))
assert es.predict(crop).logit == expected  # the parent is unharmed
"""


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", [f.backend for f in FORMATS.values()])
def test_forked_children_can_predict(tiny_bundle: Path, tmp_path: Path, backend: str, threads: int) -> None:
    """A process forked while another thread is inside ``predict`` (gunicorn --preload, multiprocessing 'fork')
    inherited a runtime whose lock was held: the child hung (LiteRT 8 of 16 forks, OpenVINO 3 of 20). Children now
    get runners re-created from the verified bytes on their first call, and fork waits for calls in flight."""
    if backend not in eyesdk.available_backends():
        pytest.skip(f"{backend} is not installed here")
    script = tmp_path / "fork_driver.py"
    script.write_text(_FORK_DRIVER)
    out = subprocess.run([sys.executable, str(script), backend, str(threads), "12", str(tiny_bundle)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    outcomes = next(line for line in out.stdout.splitlines() if line.startswith("outcomes")).split()[1:]
    if backend == "openvino" and threads > 1:  # its TBB pool cannot survive fork: a clear refusal, never a hang
        assert outcomes == ["refused"] * 12, out.stdout
        assert "OpenVINO with threads=2 cannot run in a forked child" in out.stdout
        assert "use threads=1 (which does), or start workers with the 'spawn' method" in out.stdout
    else:
        assert outcomes == ["ok"] * 12, out.stdout


def test_forked_children_run_pipelined_batches(tiny_bundle: Path, tmp_path: Path) -> None:
    """A child forked while the parent's predict_batch pipeline ran (its worker thread inside a batch) gets its own
    worker and runners, and the same logits (auto: TFLite for predict, a dynamic-batch artifact for batches)."""
    script = tmp_path / "fork_driver.py"
    script.write_text(_FORK_DRIVER)
    out = subprocess.run([sys.executable, str(script), "auto", "2", "8", str(tiny_bundle), "batches"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    outcomes = next(line for line in out.stdout.splitlines() if line.startswith("outcomes")).split()[1:]
    assert outcomes == ["ok"] * 8, out.stdout
