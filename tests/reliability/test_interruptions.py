"""Interruptions: a bundle build killed with SIGKILL at any point leaves the old bundle or the new one, never half.

A kill cannot be caught, so nothing in the build can clean up after it: what must hold is that every directory that
``load_bundle`` accepts is the complete old or the complete new bundle, and that the next successful build removes
what the killed one left. Exceptions inside a build are covered by tests/converters/test_build_bundle.py
(test_failed_build_leaves_the_previous_bundle_intact, test_atomic_bundle_dir_replaces_an_old_bundle_only_when_complete);
training killed with SIGKILL and resumed is covered by tests/converters/test_train.py
(test_sigkill_then_resume_matches_uninterrupted_run).

How: one driver subprocess (this file run as a script) trains the tiny model once, builds an "old" bundle with a real
ONNX export, then forks one child per scenario; each child runs ``build_bundle`` for a "new" bundle and is SIGKILLed
- by itself, at a chosen stage (after export, mid-validation, between writing the manifest's temp file and renaming
  it, just before the directory rename, between the two renames of the swap, before the old copy is deleted);
- by the driver, after a delay spread over the whole build.
Children reuse the first export (copied, not re-exported: export is 90 % of a build's time and not what is tested),
then validate, gate and write for real. The driver reports what it finds on disk as JSON; the assertions are here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

HOOKS = ["after-export", "mid-validation", "manifest-write", "before-rename", "between-renames",
         "before-old-removed"]
DELAYS = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0]  # fractions of an unkilled build's duration
LEFTOVER = re.compile(r"\.bundle\.[A-Za-z0-9]+-(\d+)\.[a-z0-9_]+\.(building|old)")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    if not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"):
        pytest.skip("needs fork and SIGKILL (POSIX)")
    work = tmp_path_factory.mktemp("interrupted")
    proc = subprocess.run([sys.executable, __file__, str(work)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _complete(state: str) -> bool:
    return state in ("old", "new", "final")


def test_every_kill_happened(report: dict[str, Any]) -> None:
    for case in report["cases"]:
        if case["scenario"] in HOOKS:
            assert case["status"] == "killed", case  # a hook that never fired would have exited, proving nothing
        else:  # a delayed kill may come after the build finished: then the new bundle must stand
            assert case["status"] == "killed" or (case["status"] == "exit 0" and case["target"] == "new"), case
    killed = [c for c in report["cases"] if c["status"] == "killed"]
    assert len(killed) >= len(HOOKS) + len(DELAYS) // 2


def test_the_target_is_always_a_whole_bundle_or_absent_with_the_old_one_kept(report: dict[str, Any]) -> None:
    for case in report["cases"]:
        target, leftovers = case["target"], case["leftovers"]
        if target == "missing":  # only between the two renames: then the old bundle waits, whole, as .old
            assert [s for n, s in leftovers.items() if n.endswith(".old")] == ["old"], case
        else:
            assert target in ("old", "new"), case


def test_leftovers_are_never_half_bundles(report: dict[str, Any]) -> None:
    """A leftover either does not load (no manifest yet, or files missing) or is a complete bundle, old or new."""
    for case in report["cases"]:
        for name, state in case["leftovers"].items():
            assert LEFTOVER.fullmatch(name), name
            assert state.startswith("unloadable") or _complete(state), (case["scenario"], name, state)


def test_each_stage_leaves_what_the_design_says(report: dict[str, Any]) -> None:
    by = {c["scenario"]: c for c in report["cases"]}
    expected = {  # target, leftover kinds and what each holds
        "after-export": ("old", {"building": "unloadable"}),
        "mid-validation": ("old", {"building": "unloadable"}),
        "manifest-write": ("old", {"building": "unloadable"}),  # manifest.json.tmp only: not a bundle
        "before-rename": ("old", {"building": "new"}),  # complete, but never renamed in
        "between-renames": ("missing", {"building": "new", "old": "old"}),
        "before-old-removed": ("new", {"old": "old"}),
    }
    for hook, (target, leftovers) in expected.items():
        case = by[hook]
        assert case["target"] == target, case
        assert {kind: state.split(":")[0] for kind, state in case["mine"].items()} == leftovers, case


def test_the_next_build_cleans_up(report: dict[str, Any]) -> None:
    """After all those kills, one successful build stands alone: every stale leftover is gone."""
    final = report["final"]
    assert final["target"] == "final"
    assert final["leftovers"] == {}
    assert report["leftovers_before_final"] >= len(HOOKS)  # there was something to clean


def test_a_running_builds_staging_directory_is_not_touched(tmp_path: Path) -> None:
    """Cleanup removes leftovers of dead processes only: a concurrent build's staging directory survives."""
    from eyesdk.converters.staging import _host_tag, remove_stale_leftovers

    target = tmp_path / "bundle"
    target.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        alive_dir = tmp_path / f".bundle.{_host_tag()}-{sleeper.pid}.abc123.building"
        dead_dir = tmp_path / f".bundle.{_host_tag()}-{int(dead.stdout)}.def456.old"
        other_host = tmp_path / f".bundle.elsewhere-{int(dead.stdout)}.ghi789.building"
        other_target = tmp_path / f".bundle2.{_host_tag()}-{int(dead.stdout)}.jkl012.building"
        for d in (alive_dir, dead_dir, other_host, other_target):
            d.mkdir()
        assert remove_stale_leftovers(target) == [dead_dir]
        assert alive_dir.exists() and other_host.exists() and other_target.exists() and not dead_dir.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# ------------------------------------------------------------------------------------------------ the driver


def _describe(path: Path) -> str:
    from eyesdk.bundle import load_bundle
    from eyesdk.errors import ModelIntegrityError

    if not path.exists():
        return "missing"
    try:
        return str(load_bundle(path).manifest["name"])
    except ModelIntegrityError as exc:
        return f"unloadable: {str(exc)[-120:]}"


def _survey(work: Path, pid: int) -> dict[str, Any]:
    """The target and every leftover beside it; ``mine``: the leftovers of the child ``pid``, by kind."""
    target = work / "bundle"
    leftovers = {p.name: _describe(p) for p in sorted(work.iterdir()) if p.name.startswith(".bundle.")}
    mine = {}
    for name, state in leftovers.items():
        match = LEFTOVER.fullmatch(name)
        if match and int(match.group(1)) == pid:
            mine[match.group(2)] = state
    return {"target": _describe(target), "leftovers": leftovers, "mine": mine}


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install_hook(hook: str) -> None:
    """Rig one stage of the build in this (child) process to SIGKILL it there."""
    import shutil

    from eyesdk.converters import bundle as bundle_module
    from eyesdk.converters import runners, staging

    if hook == "after-export":
        export = bundle_module.exporters.export_artifact

        def export_then_die(*args: Any, **kwargs: Any) -> Any:
            export(*args, **kwargs)
            _kill_self()

        bundle_module.exporters.export_artifact = export_then_die
    elif hook == "mid-validation":  # the artifact already ran on the validation crops and the probe
        runners.alternative_logits = lambda *args, **kwargs: _kill_self()
    elif hook == "manifest-write":
        replace = os.replace

        def replace_or_die(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if Path(dst).name == "manifest.json":
                _kill_self()
            replace(src, dst, *args, **kwargs)

        os.replace = replace_or_die
    elif hook == "before-rename":
        staging._swap_into_place = lambda stage, target: _kill_self()
    elif hook == "between-renames":
        rename = os.rename

        def rename_then_die(src: Any, dst: Any) -> None:
            rename(src, dst)
            if Path(dst).name.endswith(".old"):
                _kill_self()

        os.rename = rename_then_die
    elif hook == "before-old-removed":
        rmtree = shutil.rmtree

        def rmtree_or_die(path: Any, *args: Any, **kwargs: Any) -> None:
            if str(path).endswith(".old"):
                _kill_self()
            rmtree(path, *args, **kwargs)

        staging.shutil.rmtree = rmtree_or_die


def _run_child(build: Any, name: str, hook: str | None = None, delay: float | None = None) -> tuple[str, int]:
    """Fork, build in the child (hooked, or killed after ``delay`` s), and return how it ended and its pid."""
    pid = os.fork()
    if pid == 0:  # child: never returns into the driver's code
        code = 0
        try:
            if hook:
                _install_hook(hook)
            build(name)
            code = 3 if hook else 0  # a hooked build that finishes means the hook never fired
        except BaseException:  # noqa: BLE001 - any failure becomes an exit status the driver reports
            import traceback

            traceback.print_exc()
            code = 4
        os._exit(code)
    if delay is not None:
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)  # reaped: a zombie would still count as a running builder
    if os.WIFSIGNALED(status):
        return ("killed" if os.WTERMSIG(status) == signal.SIGKILL else f"signal {os.WTERMSIG(status)}"), pid
    return f"exit {os.WEXITSTATUS(status)}", pid


def _driver(work: Path) -> None:
    import shutil

    import torch

    torch.set_num_threads(1)
    from eyesdk.converters import bundle as bundle_module
    from eyesdk.converters.testing import train_tiny_model

    setup = train_tiny_model(0, epochs=2)
    target = work / "bundle"

    def build(name: str) -> None:
        bundle_module.build_bundle((setup.model, setup.ckpt), setup.x_val, setup.y_val, None, target,
                                   formats=["onnx"], precisions=["fp32"], name=name, echo=lambda _line: None)

    assert _run_child(build, "old")[0] == "exit 0", "the first, real build failed"
    pristine, exported = work / "pristine", work / "exported.onnx"
    shutil.copytree(target, pristine)
    shutil.copy(target / "eyestate_fp32.onnx", exported)

    def copy_export(model: Any, fmt: str, precision: str, out_dir: Any, *args: Any, **kwargs: Any) -> list[Path]:
        return [Path(shutil.copy(exported, Path(out_dir) / "eyestate_fp32.onnx"))]

    bundle_module.exporters.export_artifact = copy_export  # inherited by every child forked from here on

    def reset() -> None:
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(pristine, target)

    reset()
    start = time.perf_counter()
    assert _run_child(build, "new")[0] == "exit 0", "an unkilled build failed"
    duration = time.perf_counter() - start

    cases = []
    # Delayed kills first: one of them may finish its build (and clean up); the hooked ones never finish, so what
    # they leave is still there for the final build to remove.
    for fraction in DELAYS:
        reset()
        status, pid = _run_child(build, "new", delay=fraction * duration)
        cases.append({"scenario": f"kill after {fraction:.2f} x {duration:.2f} s", "status": status,
                      **_survey(work, pid)})
    for hook in HOOKS:
        reset()
        status, pid = _run_child(build, "new", hook=hook)
        cases.append({"scenario": hook, "status": status, **_survey(work, pid)})
    reset()
    before = len([p for p in work.iterdir() if p.name.startswith(".bundle.")])
    final_status, pid = _run_child(build, "final")
    final = {"status": final_status, **_survey(work, pid)}
    print(json.dumps({"duration_s": duration, "cases": cases, "final": final, "leftovers_before_final": before}))


if __name__ == "__main__":
    _driver(Path(sys.argv[1]))
