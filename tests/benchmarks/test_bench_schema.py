"""The eyesdk.bench/1 schema, its validator, the NaN-safe atomic writer, and the doc that documents it."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eyesdk.benchmarks import schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "bench-schema.md"


def _minimal() -> dict[str, Any]:
    return {
        "schema": schema.SCHEMA_ID,
        "created": "2026-01-01T00:00:00Z",
        "command": "eyesdk-bench",
        "device": {"arch": "x86_64", "system": "Linux", "os_release": "6", "cpu_model": "cpu", "cpu_flags": ["avx2"],
                   "cpu_count": 2, "python": "3.11", "backends": {}, "fingerprint": "x", "libraries": {}},
        "model": {"name": "m", "path": "/m", "manifest_sha256": "0" * 64, "created": None, "eyesdk_version": None,
                  "params": 357, "threshold": 0.5},
        "settings": {"runs": 10, "warmup": 5, "rounds": 10, "threads": [1], "batch_sizes": [1, 8, 64],
                     "quick": False, "crop": {"source": "synthetic", "height": 90, "width": 90}},
        "data": None,
        "results": [],
        "peers": [],
        "gates": {"max_drift_pp": None, "max_ece": None, "max_p50_us": None, "ok": True, "failures": []},
    }


def test_minimal_document_is_valid() -> None:
    assert schema.validation_errors(_minimal()) == []
    schema.validate(_minimal())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema="eyesdk.bench/2"), r"\$\.schema: must be 'eyesdk.bench/1'"),
        (lambda d: d.pop("results"), r"\$: missing required key 'results'"),
        (lambda d: d["settings"].update(runs=0), r"\$\.settings\.runs: 0 is below the minimum 1"),
        (lambda d: d["settings"].update(threads=[]), r"\$\.settings\.threads: needs at least 1 item"),
        (lambda d: d["model"].update(threshold="0.5"), r"\$\.model\.threshold: expected number"),
        (lambda d: d["gates"].update(extra=1), r"\$\.gates: unexpected key 'extra'"),
        (lambda d: d["settings"].update(quick=1), r"\$\.settings\.quick: expected boolean"),
        (lambda d: d["results"].append({"backend": "onnxruntime"}), r"\$\.results\[0\]: missing required key"),
        (lambda d: d["gates"]["failures"].append({"artifact": "a", "gate": "speed", "value": 1, "limit": 1,
                                                  "message": "m"}), r"gates\.failures\[0\]\.gate: must be one of"),
        (lambda d: d["model"].update(params=math.nan), r"\$\.model\.params: expected integer or null"),
    ],
)
def test_validator_reports_each_violation_with_its_path(edit: Any, message: str) -> None:
    document = _minimal()
    edit(document)
    with pytest.raises(schema.BenchSchemaError, match=message):
        schema.validate(document)


def test_json_safe_turns_nan_and_numpy_into_plain_json() -> None:
    raw = {"a": np.float32(1.5), "b": [np.nan, np.inf, 2], "c": np.array([1, 2]), "d": (np.int64(3), None),
           "e": Path("/x"), "f": True}
    assert schema.json_safe(raw) == {"a": 1.5, "b": [None, None, 2], "c": [1, 2], "d": [3, None], "e": "/x",
                                     "f": True}
    with pytest.raises(TypeError, match="cannot write a object into the bench JSON"):
        schema.json_safe({"x": object()})


def test_write_json_is_atomic_strict_json(tmp_path: Path) -> None:
    document = {**_minimal(), "command": "x"}
    document["settings"]["runs"] = np.int64(10)
    path = schema.write_json(tmp_path / "out" / "bench.json", document)
    text = path.read_text()
    assert "NaN" not in text and json.loads(text)["settings"]["runs"] == 10
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]  # no temporary file left behind
    assert path.stat().st_mode & 0o044  # readable by others like any file the user writes


def _keys(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.add(key)
            _keys(value, found)
        for value in node.values():
            if isinstance(value, dict):
                _keys(value, found)
    return found


def test_every_schema_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`\"?([A-Za-z0-9_]+)\"?`", text))
    missing = sorted(_keys(schema.SCHEMA, set()) - documented)
    assert not missing, f"docs/bench-schema.md does not mention {missing}"
    assert schema.SCHEMA_ID in text
