"""The soak benchmark (benchmarks/soak.py, ``eyesdk-bench soak``) in miniature: 2,000 calls per backend on the tiny
bundle.

2,000 calls say nothing about a slow leak (that is what the real run in docs/reliability.md is for); this checks the
report's structure, that answers never change, and that RSS growth stays within a generous bound.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from runtime_helpers import tiny_bundle_path

import eyesdk
from eyesdk.benchmarks import soak
from eyesdk.benchmarks.cli import main
from eyesdk.benchmarks.gates import EXIT_GATES_FAILED
from eyesdk.bundle import load_bundle

CALLS, WINDOW = 2000, 500


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not eyesdk.available_backends():
        pytest.skip("no backend installed")
    bundle = load_bundle(tiny_bundle_path(tmp_path_factory))
    return soak.run(bundle, backends=None, calls=CALLS, window=WINDOW, warmup=200, command="eyesdk-bench soak")


def test_report_structure(report: dict[str, Any]) -> None:
    assert report["schema"] == soak.SCHEMA
    assert report["bundle"]["name"] == "eyestate-tiny" and len(report["bundle"]["sha256"]) == 64
    assert report["settings"]["calls"] == CALLS and report["settings"]["window"] == WINDOW
    assert report["command"] == "eyesdk-bench soak"
    assert [r["backend"] for r in report["results"]] == eyesdk.available_backends()
    for r in report["results"]:
        assert r["calls"] == CALLS and r["precision"] == "fp32" and r["seconds"] > 0
        assert [w["calls"] for w in r["windows"]] == list(range(WINDOW, CALLS + 1, WINDOW))
        assert all(0 < w["p50_us"] <= w["p99_us"] and w["rss_mb"] > 0 for w in r["windows"])
        assert r["p50_first_us"] == r["windows"][0]["p50_us"] and r["p50_last_us"] == r["windows"][-1]["p50_us"]
        assert math.isfinite(r["drift"]) and r["drift"] > 0 and math.isfinite(r["drift_quartiles"])
    json.loads(json.dumps(report, allow_nan=False))  # the --json output is plain JSON


def test_answers_never_change_and_memory_stays_put(report: dict[str, Any]) -> None:
    for r in report["results"]:
        assert r["mismatches"] == 0, r["backend"]
        assert r["rss_growth_mb"] < 50 and r["rss_max_growth_mb"] < 50, r["backend"]  # generous: 2k calls are noise
    assert soak.failures(report, max_rss_growth_mb=50) == []


def test_table_and_gates(report: dict[str, Any]) -> None:
    table = soak.format_table(report)
    assert table.splitlines()[0].split()[:3] == ["backend", "prec", "calls"]
    assert all(r["backend"] in table for r in report["results"])
    worse = json.loads(json.dumps(report))
    worse["results"][0]["rss_growth_mb"], worse["results"][0]["mismatches"] = 12.5, 3
    problems = soak.failures(worse, max_rss_growth_mb=10)
    assert problems[0].endswith("RSS grew 12.50 MB > 10") and "3 answers changed" in problems[1]


def test_command_line_writes_json(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    backend = eyesdk.available_backends()[0]
    out = tmp_path / "soak.json"
    model = tiny_bundle_path(tmp_path_factory)
    result = CliRunner().invoke(main, ["soak", "--model", str(model), "--backends", backend, "--calls", "300",
                                       "--window", "100", "--warmup", "10", "--json", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert backend in result.output
    data = json.loads(out.read_text())
    assert [r["backend"] for r in data["results"]] == [backend] and len(data["results"][0]["windows"]) == 3
    assert data["command"] == f"eyesdk-bench soak --model {model} --backends {backend} --calls 300 --window 100 " \
                              f"--warmup 10 --json {out}"


def test_command_line_fails_the_gate_with_exit_3(tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    backend = eyesdk.available_backends()[0]
    args = ["soak", "--model", str(tiny_bundle_path(tmp_path_factory)), "--backends", backend, "--calls", "50",
            "--window", "50", "--warmup", "0"]
    seen: list[float] = []

    def one_failure(report: dict[str, Any], max_rss_growth_mb: float) -> list[str]:
        seen.append(max_rss_growth_mb)
        return [f"{report['results'][0]['backend']}: RSS grew too much"]

    monkeypatch.setattr(soak, "failures", one_failure)
    result = CliRunner().invoke(main, [*args, "--max-rss-growth-mb", "2.5"])
    assert result.exit_code == EXIT_GATES_FAILED and seen == [2.5]
    assert f"GATE FAILED soak: {backend}: RSS grew too much" in result.output
    result = CliRunner().invoke(main, [*args, "--max-rss-growth-mb", "-1"])
    assert result.exit_code == 2 and "-1" in result.output


def test_command_line_names_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(click.ClickException, match="missing"):
        main.main(["soak", "--model", str(tmp_path / "missing"), "--calls", "1"], standalone_mode=False)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="calls and window must be >= 1, got calls=0, window=10"):
        soak.soak(object(), [], calls=0, window=10)


def test_rss_is_measured() -> None:
    assert soak.rss_bytes() > 1 << 20
