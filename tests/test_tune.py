"""eyesdk.tune: timing, the per-device cache (write, reuse, corrupt file ignored, concurrent writers), autotune."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path

import pytest
from runtime_helpers import copy_bundle, drop_artifacts, run_isolated

import eyesdk
from eyesdk import backends, selection, tune
from eyesdk.bundle import Bundle, load_bundle
from eyesdk.device import DeviceInfo, parse_cpuinfo, probe
from eyesdk.errors import BackendUnavailableError
from eyesdk.formats import BACKENDS, PRECISIONS


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("EYESDK_CACHE_DIR", str(path))
    return path


@pytest.fixture
def bundle(tiny_bundle: Path) -> Bundle:
    return load_bundle(tiny_bundle)


def fake_timings(winner: str):
    """A time_runners stand-in that makes ``winner`` fastest, so the test does not depend on this CPU."""

    def timings(runners: dict, sample, rounds: int = 7, calls: int = 60) -> dict[str, float]:
        return {key: (1.0 if key == winner else 10.0 + i) for i, key in enumerate(runners)}

    return timings


# -- cache location -------------------------------------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EYESDK_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tune.cache_dir() == tmp_path / "home" / ".cache" / "eyesdk"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tune.cache_dir() == tmp_path / "xdg" / "eyesdk"
    monkeypatch.setenv("EYESDK_CACHE_DIR", str(tmp_path / "mine"))
    assert tune.cache_dir() == tmp_path / "mine"


def test_cache_key_names_device_bundle_and_threads(cache: Path, bundle: Bundle) -> None:
    path = tune.cache_path(bundle, threads=2)
    assert path.parent == cache
    assert probe().fingerprint in path.name and bundle.sha256[:16] in path.name and path.name.endswith("-t2.json")


# -- tuning -----------------------------------------------------------------------------------------------------------


def test_tune_times_every_shipped_artifact_and_caches_the_winner(cache: Path, bundle: Bundle) -> None:
    result = tune.tune(bundle, rounds=2, calls=5)
    assert set(result.p50_us) == {f"{b} {p}" for b in BACKENDS for p in PRECISIONS}
    assert all(v > 0 for v in result.p50_us.values())
    assert result.p50_us[f"{result.backend} {result.precision}"] == min(result.p50_us.values())
    assert result.path is not None and result.path.parent == cache
    data = json.loads(result.path.read_text())
    assert (data["backend"], data["precision"]) == result.choice
    assert data["fingerprint"] == probe().fingerprint and data["bundle_sha256"] == bundle.sha256
    assert list(cache.glob("*.tmp")) == []


def test_tune_only_times_what_passed_the_drift_gate(cache: Path, tiny_bundle: Path, tmp_path: Path) -> None:
    path = copy_bundle(tiny_bundle, tmp_path / "b")
    drop_artifacts(path, ("onnx", "int8"), ("tflite", "fp16"))
    result = tune.tune(load_bundle(path), rounds=1, calls=3, write=False)
    assert "onnxruntime int8" not in result.p50_us and "tflite fp16" not in result.p50_us
    assert result.rejected["onnxruntime int8"].startswith("not in this bundle")
    assert result.path is None and not cache.exists()


def test_tune_skips_missing_backends(cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "is_available", lambda name: name == "tflite")
    result = tune.tune(bundle, rounds=1, calls=3)
    assert {k.split()[0] for k in result.p50_us} == {"tflite"}
    assert result.rejected["openvino fp32"] == "not installed (pip install 'eyesdk[openvino]')"


def test_tune_with_nothing_to_time(cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "is_available", lambda name: False)
    with pytest.raises(BackendUnavailableError, match="nothing to tune for bundle 'eyestate-tiny' here: .*not inst"):
        tune.tune(bundle)


def test_time_runners_reports_median_microseconds() -> None:
    class Sleepy:
        def run(self, x):
            return x

    timings = tune.time_runners({"a": Sleepy(), "b": Sleepy()}, sample=None, rounds=2, calls=3)
    assert set(timings) == {"a", "b"} and all(0 < v < 1000 for v in timings.values())


# -- the cache in use -------------------------------------------------------------------------------------------------


def test_auto_uses_the_cached_choice(cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tune, "time_runners", fake_timings("openvino int8"))
    assert tune.tune(bundle, rounds=1, calls=1).choice == ("openvino", "int8")
    es = eyesdk.EyeState(model=bundle.path)
    assert (es.backend, es.precision) == ("openvino", "int8")
    assert es.rejected == []
    # constraints still win over the cache
    es = eyesdk.EyeState(model=bundle.path, backend="tflite")
    assert es.backend == "tflite"
    es = eyesdk.EyeState(model=bundle.path, precision="fp16")
    assert (es.backend, es.precision) == next(c for c in selection.default_order() if c[1] == "fp16")
    es = eyesdk.EyeState(model=bundle.path, backend="onnxruntime", precision="fp16")
    assert (es.backend, es.precision) == ("onnxruntime", "fp16")


def test_cached_choice_that_no_longer_loads_falls_back(
    cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tune, "time_runners", fake_timings("openvino fp16"))
    tune.tune(bundle, rounds=1, calls=1)
    monkeypatch.setattr(backends, "is_available", lambda name: name != "openvino")
    es = eyesdk.EyeState(model=bundle.path)
    assert es.backend != "openvino"


def test_other_threads_setting_does_not_use_the_cache(
    cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tune, "time_runners", fake_timings("openvino int8"))
    tune.tune(bundle, threads=1, rounds=1, calls=1)
    assert tune.cached_choice(bundle, threads=2) is None
    assert eyesdk.EyeState(model=bundle.path, threads=2).precision == "fp32"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "unreadable tuning cache"),
        ("\xff\xfe", "unreadable tuning cache"),
        ('["a list"]', "not a eyesdk.tune/1 object"),
        ('{"schema": "eyesdk.tune/1", "backend": "coreml", "precision": "fp32"}', "unknown choice 'coreml'"),
    ],
)
def test_corrupt_cache_is_ignored_with_a_log_line(
    cache: Path, bundle: Bundle, content: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tune.cache_path(bundle)
    path.parent.mkdir(parents=True)
    path.write_bytes(content.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="eyesdk"):
        assert tune.cached_choice(bundle) is None
        es = eyesdk.EyeState(model=bundle.path)
    assert (es.backend, es.precision) == selection.default_order()[0]
    assert any(reason in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_cache_of_another_device_is_ignored(cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tune, "time_runners", fake_timings("openvino int8"))
    result = tune.tune(bundle, rounds=1, calls=1)
    data = json.loads(result.path.read_text())
    data["fingerprint"] = "x86_64-0000000000000000"
    result.path.write_text(json.dumps(data))
    assert tune.cached_choice(bundle) is None


def test_concurrent_writers_leave_one_whole_file(cache: Path, bundle: Bundle) -> None:
    device = probe()
    choices = [(b, p) for b in BACKENDS for p in PRECISIONS] * 3
    barrier = threading.Barrier(len(choices))
    errors: list[BaseException] = []

    def writer(choice: tuple[str, str]) -> None:
        result = tune.TuneResult(choice[0], choice[1], {}, threads=1, fingerprint=device.fingerprint,
                                 bundle_sha256=bundle.sha256)
        barrier.wait()
        try:
            for _ in range(5):
                tune.write_cache(result, bundle)
                tune.read_cache(bundle)  # a reader never sees a torn file
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(c,)) for c in choices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert tune.cached_choice(bundle) in set(choices)
    assert [p.name for p in cache.iterdir()] == [tune.cache_path(bundle).name]


def test_autotune_tunes_once_then_reuses(cache: Path, bundle: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_tune = tune.tune

    def counting_tune(*args, **kwargs):
        calls.append(1)
        return real_tune(*args, **kwargs)

    monkeypatch.setattr(tune, "time_runners", fake_timings("onnxruntime fp16"))
    monkeypatch.setattr(tune, "tune", counting_tune)
    es = eyesdk.EyeState(model=bundle.path, autotune=True)
    assert (es.backend, es.precision) == ("onnxruntime", "fp16")
    es = eyesdk.EyeState(model=bundle.path, autotune=True)
    assert (es.backend, es.precision) == ("onnxruntime", "fp16")
    assert len(calls) == 1


# -- device fingerprint ---------------------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_sensitive() -> None:
    def device(cpu: str = "AMD EPYC", flags: tuple = ("avx2", "sse4_2"), ort: str = "ort 1.2") -> DeviceInfo:
        return DeviceInfo("x86_64", "Linux", "6.1", cpu, flags, 2, "3.11", {"onnxruntime": ort})

    a, same = device(), device(flags=("sse4_2", "avx2"))
    upgraded, other_cpu = device(ort="ort 1.3"), device(cpu="Intel Xeon")
    assert a.fingerprint == same.fingerprint and a.fingerprint.startswith("x86_64-")
    assert len({a.fingerprint, upgraded.fingerprint, other_cpu.fingerprint}) == 3
    # Two real probes of this machine, not one cached object compared with itself (probe() is an lru_cache).
    first = probe.__wrapped__()
    second = probe.__wrapped__()
    assert first is not second and first.fingerprint == second.fingerprint == probe().fingerprint
    assert json.loads(json.dumps(first.to_dict()))["fingerprint"] == first.fingerprint
    assert DeviceInfo(**{**asdict(first), "cpu_count": first.cpu_count + 1}).fingerprint != first.fingerprint


def test_parse_cpuinfo_x86_and_arm() -> None:
    x86 = "processor\t: 0\nmodel\t\t: 1\nmodel name\t: AMD EPYC 9654\nflags\t\t: sse2 avx2 fma\n\nprocessor\t: 1\n"
    assert parse_cpuinfo(x86) == ("AMD EPYC 9654", ("avx2", "fma", "sse2"))
    pi = "processor\t: 0\nFeatures\t: fp asimd crc32\nCPU part\t: 0xd08\n\nModel\t\t: Raspberry Pi 4"
    assert parse_cpuinfo(pi) == ("Raspberry Pi 4", ("asimd", "crc32", "fp"))
    bare = "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n"
    assert parse_cpuinfo(bare)[0] == "arm implementer 0x41 part 0xd03"


# -- regressions of the adversarial pass (issue 14) ---------------------------------------------------------------


def _valid_cache_text(bundle: Bundle) -> str:
    device = probe()
    result = tune.TuneResult("onnxruntime", "fp32", {"onnxruntime fp32": 1.0}, threads=1,
                             fingerprint=device.fingerprint, bundle_sha256=bundle.sha256)
    return json.dumps(result.to_dict())


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda text: "[" * 30_000 + "]" * 30_000, "nested too deeply"),
        (lambda text: text.replace('"threads": 1', '"threads": ' + "1" * 5000), "not valid JSON"),
        (lambda text: text[:-1] + ', "backend": "tflite"}', "key 'backend' twice"),
        (lambda text: "\ufeff" + text, "byte-order mark"),
        (lambda text: text + " " * (64 << 10), "over the limit of 65536 bytes"),
    ],
    ids=["deep", "huge-int", "duplicate-key", "bom", "huge"],
)
def test_malformed_cache_is_never_fatal(
    cache: Path, bundle: Bundle, content, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """#5: deeply nested JSON (RecursionError) or a 5000-digit int (ValueError) in the cache made EyeState() fail."""
    path = tune.cache_path(bundle)
    path.parent.mkdir(parents=True)
    path.write_text(content(_valid_cache_text(bundle)), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="eyesdk"):
        assert tune.read_cache(bundle) is None
        eyesdk.EyeState(model=bundle.path)
    assert any(reason in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_cache_that_is_a_fifo_or_a_device_is_ignored_without_blocking(cache: Path, bundle: Bundle) -> None:
    """#4: a FIFO at the cache path made every default EyeState() hang; a symlink to /dev/zero read until
    MemoryError. Both now cost a log line (run in a child process under a 1 GiB address-space limit)."""
    path = tune.cache_path(bundle)
    path.parent.mkdir(parents=True)
    code = (
        "import logging, sys\nlogging.basicConfig(stream=sys.stdout, level=logging.WARNING)\n"
        f"from eyesdk import tune\nfrom eyesdk.bundle import load_bundle\n"
        f"print('result', tune.read_cache(load_bundle({str(bundle.path)!r})))\n"
    )
    env_code = f"import os\nos.environ['EYESDK_CACHE_DIR'] = {str(cache)!r}\n" + code
    os.mkfifo(path)
    out = run_isolated(env_code, timeout=30)
    assert "result None" in out.stdout and "not a regular file" in out.stdout, out.stdout + out.stderr
    path.unlink()
    os.symlink("/dev/zero", path)
    out = run_isolated(env_code, timeout=30, memory_bytes=3 << 30)
    assert "result None" in out.stdout and "not a regular file" in out.stdout, out.stdout + out.stderr


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch, bundle: Bundle,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """#11: HOME unset with a uid not in passwd (containers) made EyeState() raise 'Could not determine home'."""
    import pwd

    def no_such_user(uid: int):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    for var in ("EYESDK_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_such_user)
    with caplog.at_level(logging.INFO, logger="eyesdk"):
        assert tune.cache_dir() is None
        es = eyesdk.EyeState(model=bundle.path)
    assert es.backend in eyesdk.available_backends()
    assert any("no tuning cache" in r.getMessage() for r in caplog.records)
    monkeypatch.setenv("EYESDK_CACHE_DIR", "~nosuchuser/eyesdk")
    assert tune.cache_dir() is None
    eyesdk.EyeState(model=bundle.path)


def test_writing_without_a_cache_directory_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, bundle: Bundle) -> None:
    monkeypatch.setattr(tune, "cache_dir", lambda: None)
    result = tune.TuneResult("onnxruntime", "fp32", {}, threads=1)
    assert tune.cache_path(bundle) is None and tune.read_cache(bundle) is None
    with pytest.raises(OSError, match="no tuning cache directory here .*set EYESDK_CACHE_DIR"):
        tune.write_cache(result, bundle)
