"""Rendering a bench document (benchmarks/report.py): console, Markdown and HTML, from the JSON alone; atomic files."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from eyesdk.benchmarks import report
from eyesdk.benchmarks.schema import dumps, json_safe


@pytest.fixture(scope="module")
def document(bench_run: dict[str, Any]) -> dict[str, Any]:
    return json.loads(dumps(json_safe({k: v for k, v in bench_run.items() if k != "_ticks"})))


def test_console_report_has_speed_ratios_and_quality(document: dict[str, Any]) -> None:
    text = report.text_report(document)
    header = next(line for line in text.splitlines() if line.startswith("artifact"))
    assert all(name in header for name in ("p50 µs", "x fastest", "x peer", "x peer run", "b8 /s"))
    assert "onnxruntime int8 t2" in text and "peer omz-open-closed-eye (onnx) session.run only" in text
    assert "quality (probabilities with each artifact's own temperature" in text and "Δacc pp" in text
    row = next(line for line in text.splitlines() if line.startswith("onnxruntime fp32 "))
    ratio = document["results"][0]["ratios"]["p50_vs_peer_run"]
    assert f"{ratio:.2f}x" in row


def test_markdown_report_has_every_table(document: dict[str, Any]) -> None:
    page = report.markdown_report(document)
    for heading in ("## Speed", "## Quality", "## Accuracy per slice"):
        assert heading in page
    assert "| onnxruntime fp32 |" in page and "| glasses=yes |" in page
    assert f"- command: `{document['command']}`" in page


def test_html_report_is_self_contained(document: dict[str, Any]) -> None:
    page = report.html_report(document)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page) and "<script" not in page


def test_not_measured_and_gate_failures_are_listed(document: dict[str, Any]) -> None:
    doc = copy.deepcopy(document)
    doc["results"][1]["error"] = "not installed (pip install 'eyesdk[onnx]')"
    doc["gates"]["failures"] = [{"artifact": "onnxruntime fp32", "gate": "max_p50_us", "value": 50.0, "limit": 1.0,
                                 "message": "onnxruntime fp32 (eyestate_fp32.onnx): p50 latency too high"}]
    page = report.markdown_report(doc)
    assert "## Not measured\n\n- onnxruntime fp32 t2: not installed (pip install 'eyesdk[onnx]')" in page
    assert "## Gate failures\n\n- GATE FAILED max_p50_us: onnxruntime fp32 (eyestate_fp32.onnx)" in page
    assert "Gate failures" in report.html_report(doc) and "not measured:" in report.text_report(doc)


def test_write_report_writes_three_files_from_the_json_alone(document: dict[str, Any], tmp_path: Path) -> None:
    paths = report.write_report(document, tmp_path / "new" / "report")
    assert [p.name for p in paths] == ["report.md", "report.html", "bench.json"]
    rebuilt = json.loads(paths[2].read_text())
    assert paths[0].read_text() == report.markdown_report(rebuilt)
    assert paths[1].read_text() == report.html_report(rebuilt)


def _older_and_newer(document: dict[str, Any], directory: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    report.write_report(document, directory)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}
    newer = copy.deepcopy(document)
    newer["created"] = "2099-01-01T00:00:00Z"
    newer["model"]["name"] = "a-newer-bundle"
    return before, newer


_FULL_DISK = """
import json, resource, signal, sys
from eyesdk.benchmarks.report import write_report
document = json.loads(open(sys.argv[1], encoding="utf-8").read())
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    write_report(document, sys.argv[2])
except OSError as exc:
    print("OSError", exc.errno)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_report_write_failing_midway_leaves_the_old_report_intact(document: dict[str, Any], tmp_path: Path) -> None:
    """Issue 14 #12: a full disk mid-write used to leave a truncated report.md / report.html beside an old
    bench.json. Simulated with a file-size limit smaller than every file: each write then fails part-way."""
    out = tmp_path / "report"
    before, newer = _older_and_newer(document, out)
    source = tmp_path / "newer.json"
    source.write_text(json.dumps(newer), encoding="utf-8")
    limit = min(len(data) for data in before.values()) // 2
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, str(source), str(out), str(limit)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("OSError"), proc.stdout + proc.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # every file whole and old; no temp file left beside them


def test_a_rendering_failure_writes_nothing(document: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    before, newer = _older_and_newer(document, out)

    def broken(_document: dict[str, Any]) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(report, "html_report", broken)
    with pytest.raises(RuntimeError, match="renderer bug"):
        report.write_report(newer, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # report.md was not replaced either
