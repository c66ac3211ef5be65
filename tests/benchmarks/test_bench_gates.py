"""Pass/fail gates on a bench document (benchmarks/gates.py): each failure names the artifact, gate and value."""

from __future__ import annotations

from eyesdk.benchmarks.gates import Gates, check_gates


def _result(backend: str, precision: str, **kw: object) -> dict[str, object]:
    base = {"backend": backend, "precision": precision, "threads": 1, "file": f"eyestate_{precision}.x",
            "parity": {"max_abs_diff": 0.0, "tolerance": 1e-3, "ok": True}, "drift": None, "calibration": None,
            "latency_us": {"p50": 50.0, "p90": 60.0, "p99": 90.0, "mean": 55.0}, "error": None}
    return {**base, **kw}


def test_gates_name_each_artifact_and_what_failed() -> None:
    document = {"results": [
        _result("onnxruntime", "fp32", drift={"acc_pp": 0.0, "reference": "onnxruntime fp32"},
                calibration={"ece": 0.01}),
        _result("onnxruntime", "int8", drift={"acc_pp": -0.8, "reference": "onnxruntime fp32"},
                calibration={"ece": 0.09}, latency_us={"p50": 250.0, "p90": 1, "p99": 1, "mean": 1}),
        _result("tflite", "int8", parity={"max_abs_diff": 0.3, "tolerance": 0.05, "ok": False}, threads=2),
        _result("openvino", "fp16", latency_us=None, error="not installed"),
    ]}
    out = check_gates(document, Gates(max_drift_pp=0.5, max_ece=0.05, max_p50_us=200.0))
    found = {(f["artifact"], f["gate"]) for f in out["failures"]}
    assert found == {("onnxruntime int8", "max_drift"), ("onnxruntime int8", "max_ece"),
                     ("onnxruntime int8", "max_p50_us"), ("tflite int8 t2", "parity"),
                     ("openvino fp16", "max_p50_us")}
    assert out["ok"] is False
    messages = " | ".join(f["message"] for f in out["failures"])
    assert "-0.800 pp" in messages and "ECE 0.0900" in messages and "0.3 > tolerance 0.05" in messages
    assert check_gates({"results": document["results"][:1]}, Gates(0.5, 0.05, 200.0))["ok"] is True
    assert Gates(max_ece=0.1).needs_data == ["--max-ece"]
