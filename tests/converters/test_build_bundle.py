"""Bundle building: manifest contract and checksums, gates that keep bad artifacts out, atomic replacement, CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from eyesdk.formats import FORMATS, PRECISIONS
from eyesdk.preprocess import PreprocessContract

# ------------------------------------------------------------------------------------- gates (pure numpy)


def _logits(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    z = np.where(y == 1, 1.0, -1.0) * rng.uniform(0.5, 6.0, n)
    return z.astype(np.float32), y


def test_validate_logits_passes_a_faithful_artifact():
    from eyesdk.converters.validate import validate_logits

    z, y = _logits()
    probe = z[:8]
    result = validate_logits("onnx", "fp16", z + 1e-3, z, y, probe + 1e-3, probe)
    assert result.passed and not result.reasons
    assert result.metrics["acc_pp"] == 0 and result.metrics["agreement"] == 1
    assert result.metrics["max_abs_logit_error"] == pytest.approx(1e-3, rel=1e-2)
    assert result.tolerance >= 2e-3 and result.temperature > 0
    assert {"ece_before", "ece_after", "f1_pp", "flip_rate", "mean_abs_dprob"} <= set(result.metrics)


def test_validate_logits_rejects_drift_beyond_the_gate():
    from eyesdk.converters.validate import validate_logits

    z, y = _logits()
    broken = z.copy()
    broken[:4] = -broken[:4]  # four flipped decisions of 400 = 1 pp
    result = validate_logits("openvino", "int8", broken, z, y, z[:8], z[:8])
    assert not result.passed
    assert any("|Δacc| = 1.000 pp exceeds the int8 drift gate 0.5 pp" in r for r in result.reasons)
    assert "REJECTED" in result.summary()


def test_validate_logits_parity_gate_catches_what_accuracy_misses():
    from eyesdk.converters.validate import Gates, validate_logits

    z, y = _logits()
    shifted = z + np.sign(z) * 3.0  # no decision changes, but the logits are far off
    result = validate_logits("tflite", "fp32", shifted, z, y, z[:8], z[:8])
    assert not result.passed and result.metrics["acc_pp"] == 0
    assert any("exceeds the fp32 parity gate" in r for r in result.reasons)
    relaxed = validate_logits("tflite", "fp32", shifted, z, y, z[:8], z[:8], gates=Gates(parity={"fp32": 10.0}))
    assert relaxed.passed


def test_validate_logits_rejects_non_finite_output():
    from eyesdk.converters.validate import validate_logits

    z, y = _logits()
    bad = z.copy()
    bad[3] = np.nan
    result = validate_logits("onnx", "int8", bad, z, y, z[:8], z[:8])
    assert not result.passed and result.reasons == ["the artifact produced NaN or infinite logits"]


def test_reproduction_tolerance_rules():
    from eyesdk.converters.validate import reproduction_tolerance

    reference = np.array([-10.0, 0.5, 4.0], np.float32)
    assert reproduction_tolerance("fp32", reference, reference) == pytest.approx(1e-3 + 1e-4 * 10)
    assert reproduction_tolerance("fp16", reference + 0.1, reference) == pytest.approx(0.2, rel=1e-5)
    assert reproduction_tolerance("int8", reference + 1.0, reference) == pytest.approx(0.5)  # half the error
    assert reproduction_tolerance("int8", reference + 0.02, reference, kernel_variation=0.3) == pytest.approx(0.9)
    assert reproduction_tolerance("int8", reference, reference) == pytest.approx(0.05)  # floor


def test_gates_refuse_unknown_precisions_and_negative_values():
    from eyesdk.converters.validate import Gates

    assert Gates(drift_pp={"int8": 1.0}).drift_pp == {"fp32": 0.05, "fp16": 0.05, "int8": 1.0}
    with pytest.raises(ValueError, match=r"Gates.drift_pp has unknown precision\(s\) \['int4'\]"):
        Gates(drift_pp={"int4": 1.0})
    with pytest.raises(ValueError, match="Gates.parity values must be numbers >= 0"):
        Gates(parity={"fp32": -1})


def test_default_gates_come_from_the_format_table():
    from eyesdk.converters.validate import Gates
    from eyesdk.formats import GATES, PRECISIONS

    assert set(GATES) == set(PRECISIONS)
    assert Gates().to_dict() == {"drift_pp": {p: GATES[p].drift_pp for p in PRECISIONS},
                                 "parity": {p: GATES[p].parity for p in PRECISIONS}}


def test_probe_is_deterministic_and_preprocessed():
    from eyesdk.converters.validate import make_probe
    from eyesdk.preprocess import PreprocessContract

    probe = make_probe(count=16)
    assert probe.shape == (16, 1, 32, 32) and probe.dtype == np.float32
    np.testing.assert_array_equal(probe, make_probe(count=16))
    np.testing.assert_allclose(probe.mean(axis=(1, 2, 3)), 0, atol=1e-4)  # per-crop standardized
    assert make_probe(PreprocessContract(size=24), count=2).shape == (2, 1, 24, 24)
    with pytest.raises(ValueError, match="probe count must be >= 1; got 0"):
        make_probe(count=0)


# ----------------------------------------------------------------------------------- atomic directory swap


def _fake_bundle(root: Path, marker: str) -> Path:
    from eyesdk.converters.bundle import write_manifest

    (root / "a.txt").write_text(marker)
    write_manifest(root, {"schema": "test", "marker": marker})
    return root


def test_atomic_bundle_dir_replaces_an_old_bundle_only_when_complete(tmp_path):
    from eyesdk.converters.bundle import atomic_bundle_dir

    target = tmp_path / "bundle"
    with atomic_bundle_dir(target) as stage:
        _fake_bundle(stage, "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_bundle_dir(target) as stage:
        _fake_bundle(stage, "new")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "old"
    with pytest.raises(RuntimeError, match="has no manifest.json; it was not completed"), \
            atomic_bundle_dir(target) as stage:
        (stage / "a.txt").write_text("half")
    assert (target / "a.txt").read_text() == "old"
    with atomic_bundle_dir(target) as stage:
        _fake_bundle(stage, "new")
    assert (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging or old copies left


def test_atomic_bundle_dir_refuses_to_replace_a_non_bundle(tmp_path):
    from eyesdk.converters.bundle import atomic_bundle_dir

    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("x")
    with pytest.raises(FileExistsError, match="non-empty directory without manifest.json"), \
            atomic_bundle_dir(tmp_path / "precious"):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not a directory"), atomic_bundle_dir(tmp_path / "file"):
        pass
    assert (tmp_path / "precious" / "thesis.tex").exists()


def test_write_manifest_lists_every_file_with_sha256_and_size(tmp_path):
    from eyesdk.converters.bundle import write_manifest

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (tmp_path / "a.txt").write_text("hello")
    manifest = write_manifest(tmp_path, {"schema": "x"})
    assert manifest["files"] == {
        "a.txt": {"sha256": hashlib.sha256(b"hello").hexdigest(), "size": 5},
        "sub/b.bin": {"sha256": hashlib.sha256(b"\x00\x01").hexdigest(), "size": 2},
    }
    text = (tmp_path / "manifest.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    (tmp_path / "link").symlink_to(tmp_path / "a.txt")
    with pytest.raises(ValueError, match="is a symlink; a bundle must hold plain files only"):
        write_manifest(tmp_path, {"schema": "x"})


# ------------------------------------------------------------------------------------ heavy: real builds


@pytest.fixture(scope="module")
def full_bundle(tmp_path_factory, tiny):
    from eyesdk.converters.testing import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def _build(tiny, out: Path, lines: list[str] | None = None, **kw):
    from eyesdk.converters.bundle import build_bundle

    return build_bundle((tiny.model, tiny.ckpt), tiny.x_val, tiny.y_val, tiny.x_calib, out,
                        echo=(lines.append if lines is not None else lambda _line: None), **kw)


@pytest.mark.heavy
def test_manifest_follows_the_bundle_format(full_bundle, tiny):
    from eyesdk.bundle import load_bundle
    from eyesdk.converters.flops import count_macs
    from eyesdk.converters.model import count_params

    manifest = json.loads((full_bundle / "manifest.json").read_text())
    assert manifest["schema"] == "eyesdk.bundle/1"
    on_disk = {p.relative_to(full_bundle).as_posix() for p in full_bundle.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}  # every file, .bin, sidecars and probe included
    for rel, entry in manifest["files"].items():
        data = (full_bundle / rel).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert {(a["format"], a["precision"]) for a in manifest["artifacts"]} == {
        (f, p) for f in FORMATS for p in PRECISIONS
    }
    assert manifest["rejected"] == []
    assert manifest["labels"] == ["closed", "open"] and manifest["threshold"] == 0.5
    assert manifest["output"] == {"kind": "logit", "positive": "open"}
    assert manifest["preprocess"] == tiny.ckpt["contract"]
    assert manifest["model"]["params"] == count_params(tiny.model)
    assert manifest["model"]["macs"] == count_macs(tiny.model, 32)
    assert manifest["training"]["sources"] == tiny.ckpt["data_summary"]["sources"]
    assert manifest["probe"] == {"file": "probe.npy", "count": 64}
    for entry in manifest["artifacts"]:
        assert len(entry["reference_logits"]) == 64
        assert entry["batch"] == ("dynamic" if entry["format"] != "tflite" else 1)
        assert {"max_abs_logit_error", "acc_pp", "f1_pp", "flip_rate", "ece_before", "ece_after"} <= set(
            entry["validation"])
    bundle = load_bundle(full_bundle)  # the runtime's own verifier accepts what this side writes
    assert bundle.probe().shape == (64, 1, 32, 32)


def _negate_head_of_onnx_fp32(original):
    """Wrap export_artifact so the ONNX fp32 file comes out with its logit head negated (every decision flips)."""

    def corrupted(model, fmt, precision, out_dir, *args, **kw):
        files = original(model, fmt, precision, out_dir, *args, **kw)
        if (fmt, precision) == ("onnx", "fp32"):
            import onnx
            from onnx import numpy_helper

            proto = onnx.load(str(files[0]))
            for init in proto.graph.initializer:
                if init.name.startswith("head."):
                    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
            onnx.save(proto, str(files[0]))
        return files

    return corrupted


@pytest.mark.heavy
def test_gate_keeps_a_broken_artifact_out_and_says_why(tiny, tmp_path, monkeypatch):
    from eyesdk.converters import bundle as bundle_module

    monkeypatch.setattr(bundle_module.exporters, "export_artifact",
                        _negate_head_of_onnx_fp32(bundle_module.exporters.export_artifact))
    lines: list[str] = []
    out = _build(tiny, tmp_path / "b", lines, formats=["onnx"], precisions=["fp32", "fp16"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(a["format"], a["precision"]) for a in manifest["artifacts"]] == [("onnx", "fp16")]
    (rejected,) = manifest["rejected"]
    assert (rejected["format"], rejected["precision"]) == ("onnx", "fp32")
    assert any("exceeds the fp32 drift gate 0.05 pp" in r for r in rejected["reasons"])
    assert not (out / "eyestate_fp32.onnx").exists() and "eyestate_fp32.onnx" not in manifest["files"]
    assert any(line.startswith("onnx     fp32") and "REJECTED: |Δacc|" in line for line in lines)


@pytest.mark.heavy
def test_failed_build_leaves_the_previous_bundle_intact(tiny, tmp_path, monkeypatch):
    from eyesdk.converters import bundle as bundle_module
    from eyesdk.converters.bundle import NoArtifactPassedError

    out = _build(tiny, tmp_path / "b", formats=["onnx"], precisions=["fp32"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    calls = []
    original = bundle_module.exporters.export_artifact

    def crash_on_second(*args, **kw):
        calls.append(args[1:3])
        if len(calls) == 2:
            raise RuntimeError("converter crashed")
        return original(*args, **kw)

    monkeypatch.setattr(bundle_module.exporters, "export_artifact", crash_on_second)
    with pytest.raises(RuntimeError, match="converter crashed"):
        _build(tiny, out, formats=["onnx", "openvino"], precisions=["fp32"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no half bundle or staging directory left

    monkeypatch.setattr(bundle_module.exporters, "export_artifact", _negate_head_of_onnx_fp32(original))
    with pytest.raises(NoArtifactPassedError, match="no artifact passed its gates, so no bundle was written"):
        _build(tiny, out, formats=["onnx"], precisions=["fp32"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_build_bundle_checks_its_inputs(tmp_path):
    pytest.importorskip("torch")
    from eyesdk.converters.bundle import build_bundle
    from eyesdk.converters.model import EyeNet

    source = (EyeNet((4, 8)), {})
    x, y = np.zeros((4, 1, 32, 32), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="int8 artifacts need calibration crops"):
        build_bundle(source, x, y, None, tmp_path / "b")
    with pytest.raises(ValueError, match=r"x_val has shape \(4, 1, 16, 16\) float32; expected preprocessed"):
        build_bundle(source, np.zeros((4, 1, 16, 16), np.float32), y, None, tmp_path / "b", precisions=["fp32"])
    with pytest.raises(ValueError, match="x_val has 4 crops but y_val has 3 labels"):
        build_bundle(source, x, y[:3], None, tmp_path / "b", precisions=["fp32"])
    with pytest.raises(ValueError, match=r"unknown or empty formats \['coreml'\]; choose from onnx, openvino"):
        build_bundle(source, x, y, None, tmp_path / "b", formats=["coreml"])
    with pytest.raises(TypeError, match="source must be a checkpoint path or a"):
        build_bundle(object(), x, y, None, tmp_path / "b")  # type: ignore[arg-type]
    assert not (tmp_path / "b").exists()


# ------------------------------------------------------------------------------------------------- CLI


def _write_dataset(root: Path, per_class: int = 8, subjects: int = 10) -> Path:
    from PIL import Image

    from eyesdk.converters.validate import synthetic_eye_images

    images, labels = synthetic_eye_images(2 * per_class * subjects, seed=7)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / ("open" if label else "closed") / f"person{i % subjects}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(image).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.mark.heavy
def test_export_command_writes_a_bundle_from_a_checkpoint(tiny, tmp_path):
    pytest.importorskip("PIL")
    from click.testing import CliRunner

    from eyesdk.converters.checkpoint import save_checkpoint
    from eyesdk.converters.cli_export import export_cmd

    extra = {k: v for k, v in tiny.ckpt.items() if k not in ("config", "state_dict")}
    ckpt = save_checkpoint(tmp_path / "best.pt", tiny.model, **extra)
    data = _write_dataset(tmp_path / "data")
    args = ["--checkpoint", str(ckpt), "--data", str(data), "--folds", str(tmp_path / "folds.json"),
            "--out", str(tmp_path / "bundle"), "--formats", "onnx", "--precisions", "fp32,int8",
            "--gate", "int8=2.0", "--probe-count", "8", "--cache", str(tmp_path / "cache"), "--quiet"]
    result = CliRunner().invoke(export_cmd, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "validating on fold 0" in result.output and "onnx     int8" in result.output
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert {a["precision"] for a in manifest["artifacts"]} == {"fp32", "int8"}
    assert manifest["validation"]["gates"]["drift_pp"]["int8"] == 2.0
    assert manifest["probe"]["count"] == 8 and len(manifest["artifacts"][0]["reference_logits"]) == 8
    assert (tmp_path / "folds.json").exists()  # the split is recorded for the next run
    assert manifest["preprocess"]["normalization_in_model"] is True  # the CLI's default: standardize in the graph


@pytest.mark.heavy
def test_an_in_graph_standardization_bundle_answers_as_the_runtime_path_does(tiny, tmp_path):
    import dataclasses

    from synthetic import synthetic_eye

    import eyesdk
    from eyesdk.converters.bundle import build_bundle
    from eyesdk.converters.testing import TINY_VAL, synthetic_crops
    from eyesdk.converters.validate import Gates
    from eyesdk.preprocess import preprocess_grey

    contract = dataclasses.replace(PreprocessContract.from_dict(tiny.ckpt["contract"]), normalization_in_model=True)
    x_val, y_val = synthetic_crops(TINY_VAL, 2000, contract)  # what the runtime feeds: resized, not standardized
    x_calib, _ = synthetic_crops(200, 1000, contract)
    assert not np.allclose(x_val, tiny.x_val)
    lines: list[str] = []
    in_model = build_bundle((tiny.model, tiny.ckpt), x_val, y_val, x_calib, tmp_path / "in_model",
                            precisions=["fp32", "int8"], gates=Gates(drift_pp={"int8": 2.0}), echo=lines.append,
                            standardize_in_model=True)
    runtime = _build(tiny, tmp_path / "runtime", formats=["onnx"], precisions=["fp32"])
    manifest = json.loads((in_model / "manifest.json").read_text())
    assert manifest["preprocess"] == contract.to_dict() and manifest["rejected"] == [], lines
    assert np.load(in_model / "probe.npy").max() > 20  # the probe is stored as the artifacts take it: [0, 255]
    crops = [synthetic_eye(i % 2 == 0, (40, 60), np.random.default_rng(i)) for i in range(12)]
    reference = eyesdk.EyeState(runtime, backend="onnxruntime", precision="fp32")
    want = [reference.predict(c).logit for c in crops]
    for fmt, backend in (("onnx", "onnxruntime"), ("openvino", "openvino"), ("tflite", "tflite")):
        es = eyesdk.EyeState(in_model, backend=backend, precision="fp32")
        one = [es.predict(c).logit for c in crops]
        assert one == pytest.approx(want, abs=1e-3), fmt
        assert [r.logit for r in es.predict_batch(np.stack(crops))] == pytest.approx(one, abs=1e-5), fmt
        grey = np.stack(crops).astype(np.float32)
        assert es.logits(preprocess_grey(grey, es.bundle.contract)[:, None]) == pytest.approx(one, abs=1e-5)


def test_cli_refuses_bad_choices():
    from click.testing import CliRunner

    from eyesdk.converters.cli_export import export_cmd

    runner = CliRunner()
    result = runner.invoke(export_cmd, ["--checkpoint", __file__, "--data", ".", "--formats", "onnx,coreml"])
    assert result.exit_code == 2
    assert "unknown format coreml; choose from onnx, openvino, tflite or 'all'" in result.output
    result = runner.invoke(export_cmd, ["--checkpoint", __file__, "--data", ".", "--gate", "int4=1"])
    assert result.exit_code == 2 and "expected PRECISION=PP with PRECISION one of fp32, fp16, int8" in result.output


def test_build_command_calls_the_training_hook(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from eyesdk.converters import cli_export, pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "prepare_data", lambda *a, **kw: "prepared")

    def train_fn(data, val_fold, workdir):
        seen.update(data=data, val_fold=val_fold, workdir=workdir)
        return tmp_path / "trained.pt"

    def fake_export(checkpoint, prepared, **kw):
        seen.update(checkpoint=checkpoint, passed=prepared)
        return tmp_path / "bundle"

    monkeypatch.setattr(cli_export, "run_export", fake_export)
    command = cli_export.make_build_command(train_fn)
    result = CliRunner().invoke(command, ["--data", ".", "--workdir", str(tmp_path / "w"), "--val-fold", "2"])
    assert result.exit_code == 0, result.output
    assert seen == {"data": "prepared", "val_fold": 2, "workdir": tmp_path / "w",
                    "checkpoint": str(tmp_path / "trained.pt"), "passed": "prepared"}


@pytest.mark.heavy
def test_a_given_temperature_is_shipped_with_each_artifacts_drift(tmp_path, tiny):
    """--temperature / cv.json: the pooled out-of-fold T replaces the validation fit, times each artifact's drift."""
    import json

    from eyesdk.metrics import fit_temperature

    out = _build(tiny, tmp_path / "b", formats=["onnx"], precisions=["fp32", "int8"], temperature=1.7)
    manifest = json.loads((out / "manifest.json").read_text())
    validation = manifest["validation"]
    assert validation["reference_temperature"] == 1.7
    assert validation["temperature_source"] == "given (pooled out-of-fold)"
    fitted = validation["validation_temperature"]
    from eyesdk.converters.validate import torch_logits

    assert fitted == pytest.approx(fit_temperature(torch_logits(tiny.model, tiny.x_val), tiny.y_val))
    by_precision = {a["precision"]: a["temperature"] for a in manifest["artifacts"]}
    assert by_precision["fp32"] == pytest.approx(1.7, rel=1e-3)  # fp32 drifts by ~1e-6
    assert by_precision["int8"] == pytest.approx(1.7, rel=0.1)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        _build(tiny, tmp_path / "c", formats=["onnx"], precisions=["fp32"], temperature=0.0)


def test_export_records_the_folds_file_in_the_training_section(tmp_path, tiny, monkeypatch):
    """The manifest's training section names the split its fold numbers refer to (`eyesdk-bench stream` reads it)."""
    from types import SimpleNamespace

    from eyesdk.converters import bundle as bundle_module
    from eyesdk.converters.bundle import checkpoint_contract
    from eyesdk.converters.checkpoint import save_checkpoint
    from eyesdk.converters.cli_export import run_export

    meta = {k: v for k, v in tiny.ckpt.items() if k not in ("config", "state_dict")}
    checkpoint = save_checkpoint(tmp_path / "c.pt", tiny.model, **meta)
    x = tiny.x_val[:, 0]
    data = SimpleNamespace(folds=np.arange(len(x)) % 2, y=tiny.y_val, contract=checkpoint_contract(tiny.ckpt),
                           fed=lambda mask, _contract: x[mask])
    seen = {}
    monkeypatch.setattr(bundle_module, "build_bundle", lambda source, *a, **kw: seen.setdefault("ckpt", source[1]))
    run_export(checkpoint, data, folds_file="folds/x.json", val_fold=1, calib_count=4, out=tmp_path / "b",
               formats=["onnx"], precisions=["fp32"], gates=None, name=None, probe_count=4, temperature=None,
               standardize_in_model=False)
    assert seen["ckpt"]["data_summary"]["folds_file"] == "folds/x.json"
