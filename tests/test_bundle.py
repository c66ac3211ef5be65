"""eyesdk.bundle: a bundle is verified (schema, checksums, paths, contract) before any backend reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from runtime_helpers import copy_bundle, edit_manifest, read_manifest, rehash, run_isolated, write_manifest

import eyesdk
from eyesdk import backends, bundle
from eyesdk.bundle import SCHEMA, Bundle, load_bundle, load_default_bundle
from eyesdk.errors import ModelIntegrityError
from eyesdk.formats import FORMATS, PRECISIONS
from eyesdk.preprocess import PreprocessContract


@pytest.fixture
def damaged(tiny_bundle: Path, tmp_path: Path) -> Path:
    return copy_bundle(tiny_bundle, tmp_path / "bundle")


def test_loads_and_exposes_the_manifest(tiny_bundle: Path) -> None:
    b = load_bundle(tiny_bundle)
    assert isinstance(b, Bundle)
    assert b.path == tiny_bundle.resolve()
    assert len(b.sha256) == 64
    assert isinstance(b.contract, PreprocessContract)
    assert b.manifest["schema"] == SCHEMA
    assert {(a["format"], a["precision"]) for a in b.artifacts} == {(f, p) for f in FORMATS for p in PRECISIONS}
    assert b.artifact("onnx", "fp32")["file"] == "eyestate_fp32.onnx"
    assert b.file("eyestate_fp32.onnx").is_file()
    assert 0.0 <= b.threshold <= 1.0
    probe = b.probe()
    assert probe.shape[1:] == (1, b.contract.size, b.contract.size)


def test_same_bundle_same_sha(tiny_bundle: Path, damaged: Path) -> None:
    assert load_bundle(tiny_bundle).sha256 == load_bundle(damaged).sha256


def test_modified_artifact_is_refused(damaged: Path) -> None:
    path = damaged / "eyestate_fp32.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_fp32\.onnx' has sha256 .* \(modified\)"):
        load_bundle(damaged)


def test_truncated_file_is_refused(damaged: Path) -> None:
    path = damaged / "eyestate_int8.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_int8\.bin' is \d+ bytes; the manifest says \d+"):
        load_bundle(damaged)


def test_missing_file_is_refused(damaged: Path) -> None:
    (damaged / "eyestate_fp16.tflite").unlink()
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_fp16\.tflite' is missing"):
        load_bundle(damaged)


def test_unknown_schema_is_refused(damaged: Path) -> None:
    edit_manifest(damaged, schema="eyesdk.bundle/3")
    with pytest.raises(ModelIntegrityError,
                       match=r"unknown schema 'eyesdk\.bundle/3'.*reads 'eyesdk\.bundle/1' and 'eyesdk\.bundle/2'"):
        load_bundle(damaged)


def test_the_schema_says_where_the_standardization_runs(damaged: Path) -> None:
    """/2 marks a bundle whose artifacts standardize their input: older eyesdk releases (which ignore contract
    fields they do not know) refuse it instead of standardizing twice; the two must agree."""
    manifest = json.loads((damaged / "manifest.json").read_text())
    edit_manifest(damaged, schema="eyesdk.bundle/2")
    with pytest.raises(ModelIntegrityError, match=r"schema 'eyesdk\.bundle/2' does not go with "
                                                  r"normalization_in_model=false \(that is 'eyesdk\.bundle/1'\)"):
        load_bundle(damaged)
    in_model = {**manifest["preprocess"], "normalization_in_model": True}
    edit_manifest(damaged, schema="eyesdk.bundle/1", preprocess=in_model)
    with pytest.raises(ModelIntegrityError, match=r"schema 'eyesdk\.bundle/1' does not go with "
                                                  r"normalization_in_model=true \(that is 'eyesdk\.bundle/2'\)"):
        load_bundle(damaged)
    assert load_default_bundle().manifest["schema"] == "eyesdk.bundle/2"  # the shipped bundle standardizes in-graph


def test_manifest_that_is_not_json_is_refused(damaged: Path) -> None:
    (damaged / "manifest.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="manifest.json is not valid JSON"):
        load_bundle(damaged)


def test_manifest_that_is_not_an_object_is_refused(damaged: Path) -> None:
    (damaged / "manifest.json").write_text("[]")
    with pytest.raises(ModelIntegrityError, match="must hold a JSON object"):
        load_bundle(damaged)


def test_directory_without_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="has no manifest.json; it is not an eyesdk bundle"):
        load_bundle(tmp_path)


def test_missing_bundle_directory_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")


def test_a_file_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_bytes(b"")
    with pytest.raises(ModelIntegrityError, match="is not a directory"):
        load_bundle(tmp_path / "x.onnx")


@pytest.mark.parametrize("key", ["files", "artifacts", "preprocess", "threshold"])
def test_missing_required_key_is_refused(damaged: Path, key: str) -> None:
    edit_manifest(damaged, **{key: None})
    with pytest.raises(ModelIntegrityError, match=f"lacks key\\(s\\) {key}"):
        load_bundle(damaged)


@pytest.mark.parametrize(
    ("bad_path", "message"),
    [
        ("../outside.onnx", r"'\.' or '\.\.' components"),
        ("sub/../../outside.onnx", r"'\.' or '\.\.' components"),
        ("/etc/passwd", "is absolute"),
        ("C:\\model.onnx", "is absolute"),
        ("sub\\model.onnx", "backslashes"),
        ("", "non-empty string"),
    ],
)
def test_paths_outside_the_bundle_are_refused(damaged: Path, bad_path: str, message: str) -> None:
    manifest = read_manifest(damaged)
    manifest["files"][bad_path] = {"sha256": "0" * 64, "size": 1}
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=message):
        load_bundle(damaged)


def test_artifact_path_outside_the_bundle_is_refused(damaged: Path, tmp_path: Path) -> None:
    manifest = read_manifest(damaged)
    manifest["artifacts"][0]["file"] = "../elsewhere/eyestate_fp32.onnx"
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=r"artifacts\[0\]\.file: path '\.\./elsewhere"):
        load_bundle(damaged)


def test_symlinked_artifact_is_refused(damaged: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.onnx"
    target.write_bytes((damaged / "eyestate_fp32.onnx").read_bytes())  # identical bytes: only the link is wrong
    (damaged / "eyestate_fp32.onnx").unlink()
    os.symlink(target, damaged / "eyestate_fp32.onnx")
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_fp32\.onnx' is a symlink"):
        load_bundle(damaged)


def test_symlinked_directory_component_is_refused(damaged: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "probe.npy").write_bytes((damaged / "probe.npy").read_bytes())
    os.symlink(tmp_path / "real", damaged / "sub")
    manifest = read_manifest(damaged)
    manifest["files"]["sub/probe.npy"] = manifest["files"]["probe.npy"]
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match="'sub' is a symlink"):
        load_bundle(damaged)


def test_symlinked_manifest_is_refused(damaged: Path, tmp_path: Path) -> None:
    (tmp_path / "m.json").write_bytes((damaged / "manifest.json").read_bytes())
    (damaged / "manifest.json").unlink()
    os.symlink(tmp_path / "m.json", damaged / "manifest.json")
    with pytest.raises(ModelIntegrityError, match="manifest.json is a symlink"):
        load_bundle(damaged)


def test_artifact_not_covered_by_a_checksum_is_refused(damaged: Path) -> None:
    manifest = read_manifest(damaged)
    del manifest["files"]["eyestate_fp16.bin"]
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_fp16\.bin' is not listed in 'files'"):
        load_bundle(damaged)


def test_manifest_listing_itself_is_refused(damaged: Path) -> None:
    manifest = read_manifest(damaged)
    manifest["files"]["manifest.json"] = {"sha256": "0" * 64, "size": 1}
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match="lists manifest.json itself"):
        load_bundle(damaged)


def test_malformed_files_entry_is_refused(damaged: Path) -> None:
    manifest = read_manifest(damaged)
    manifest["files"]["probe.npy"] = {"sha256": 123}
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=r"files\['probe\.npy'\] must be"):
        load_bundle(damaged)


def test_unsupported_contract_is_refused(damaged: Path) -> None:
    contract = read_manifest(damaged)["preprocess"]
    edit_manifest(damaged, preprocess={**contract, "resize": "bicubic"})
    with pytest.raises(ModelIntegrityError, match="manifest key 'preprocess': unsupported preprocessing contract"):
        load_bundle(damaged)


def test_swapped_labels_are_refused(damaged: Path) -> None:
    edit_manifest(damaged, labels=["open", "closed"])
    with pytest.raises(ModelIntegrityError, match=r"'labels' is \['open', 'closed'\]"):
        load_bundle(damaged)


def test_other_output_kind_is_refused(damaged: Path) -> None:
    edit_manifest(damaged, output={"kind": "softmax", "positive": "open"})
    with pytest.raises(ModelIntegrityError, match="manifest key 'output'"):
        load_bundle(damaged)


@pytest.mark.parametrize("threshold", [1.5, -0.1, "0.5", True])
def test_bad_threshold_is_refused(damaged: Path, threshold: object) -> None:
    edit_manifest(damaged, threshold=threshold)
    with pytest.raises(ModelIntegrityError, match="'threshold' must be a probability in"):
        load_bundle(damaged)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", "coreml", r"artifacts\[0\]\.format 'coreml' is unknown"),
        ("precision", "int4", r"artifacts\[0\]\.precision 'int4' is unknown"),
        ("batch", 0, r"artifacts\[0\]\.batch must be 'dynamic' or a positive int"),
        ("temperature", 0.0, r"artifacts\[0\]\.temperature must be a positive finite number"),
        ("temperature", None, r"artifacts\[0\] lacks key\(s\) temperature"),
    ],
)
def test_bad_artifact_entries_are_refused(damaged: Path, field: str, value: object, message: str) -> None:
    manifest = read_manifest(damaged)
    if value is None:
        del manifest["artifacts"][0][field]
    else:
        manifest["artifacts"][0][field] = value
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=message):
        load_bundle(damaged)


def test_duplicate_artifact_is_refused(damaged: Path) -> None:
    manifest = read_manifest(damaged)
    manifest["artifacts"].append(dict(manifest["artifacts"][0]))
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match="is listed twice"):
        load_bundle(damaged)


def test_integrity_is_checked_before_any_backend_loads(damaged: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_backend(name: str) -> None:
        raise AssertionError(f"backend {name} was loaded from an unverified bundle")

    monkeypatch.setattr(backends, "load_backend", no_backend)
    path = damaged / "eyestate_fp32.tflite"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelIntegrityError, match=r"eyestate_fp32\.tflite"):
        eyesdk.EyeState(model=damaged)


def test_default_bundle_path_is_inside_the_package() -> None:
    path = bundle.default_bundle_path()
    assert path.name == "default"
    assert path.parent == Path(eyesdk.__file__).parent / "models"


def test_missing_default_bundle_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundle, "default_bundle_path", lambda: tmp_path / "default")
    with pytest.raises(FileNotFoundError, match="embedded default model bundle is missing.*pass model="):
        bundle.load_default_bundle()
    with pytest.raises(FileNotFoundError, match="embedded default model bundle is missing"):
        eyesdk.EyeState()


# -- regressions of the adversarial pass (issue 14) ---------------------------------------------------------------


def test_an_artifact_swapped_after_verification_is_never_loaded(damaged: Path) -> None:
    """#1: a Bundle verified earlier must not vouch for files that changed since: the backend gets verified bytes."""
    verified = load_bundle(damaged)
    path = damaged / "eyestate_fp32.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_fp32\.onnx' changed after the bundle was verified"):
        eyesdk.EyeState(model=verified, backend="onnxruntime", precision="fp32")


def test_backends_load_the_bytes_that_were_hashed(damaged: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """#1: swapping a file between its hash and the backend's load (the race) cannot change what is loaded."""
    from synthetic import synthetic_eye

    crop = synthetic_eye(True, (40, 60))
    expected = eyesdk.EyeState(model=damaged, backend="onnxruntime", precision="fp32").predict(crop).logit
    real = backends.load_backend

    def swapping(name: str):
        module = real(name)

        class Swapped:
            @staticmethod
            def load(source, threads):
                target = damaged / "eyestate_fp32.onnx"
                target.write_bytes(b"\0" * target.stat().st_size)  # the attacker wins the race
                return module.load(source, threads)

        return Swapped

    monkeypatch.setattr(backends, "load_backend", swapping)
    es = eyesdk.EyeState(model=damaged, backend="onnxruntime", precision="fp32")
    assert es.predict(crop).logit == expected


def _with_external_data(damaged: Path, location: str) -> None:
    onnx = pytest.importorskip("onnx")
    path = damaged / "eyestate_fp32.onnx"
    model = onnx.load(str(path))
    tensor = next(t for t in model.graph.initializer if t.raw_data)
    (damaged.parent / "x.data").write_bytes(tensor.raw_data)
    length = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    rehash(damaged, "eyestate_fp32.onnx")


@pytest.mark.parametrize("location", ["../x.data", "../../x.data", "/etc/passwd", "probe.npy"])
def test_onnx_external_data_is_refused(damaged: Path, location: str) -> None:
    """#3: an ONNX tensor that names a file (external data, even inside the bundle) is refused at verification."""
    _with_external_data(damaged, location)
    with pytest.raises(ModelIntegrityError, match=r"eyestate_fp32\.onnx.*external data"):
        load_bundle(damaged)


def test_a_fifo_manifest_is_refused_without_hanging(damaged: Path) -> None:
    """#4: opening a FIFO for reading blocks until a writer comes: it must be refused, not waited on."""
    (damaged / "manifest.json").unlink()
    os.mkfifo(damaged / "manifest.json")
    code = (
        "from eyesdk.bundle import load_bundle\nfrom eyesdk.errors import ModelIntegrityError\n"
        f"try:\n    load_bundle({str(damaged)!r})\nexcept ModelIntegrityError as e:\n    print(e)\n"
    )
    out = run_isolated(code, timeout=30)
    assert "manifest.json is not a regular file" in out.stdout, out.stderr


def test_a_huge_manifest_is_refused(damaged: Path) -> None:
    """Also: no size cap on the manifest (a 300 MB one loaded); now capped at 4 MiB."""
    text = (damaged / "manifest.json").read_text()
    (damaged / "manifest.json").write_text(text + " " * (4 << 20))
    with pytest.raises(ModelIntegrityError, match=r"manifest\.json is over the limit of 4194304 bytes"):
        load_bundle(damaged)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (lambda text: text.encode("utf-16"), "not UTF-8"),
        (lambda text: text.encode("utf-16-le"), "not UTF-8"),
        (lambda text: b"\xef\xbb\xbf" + text.encode(), "byte-order mark"),
        (lambda text: ("[" * 100_000 + "]" * 100_000).encode(), "nested too deeply"),
        (lambda text: text.replace('"threshold": 0.5', '"threshold": ' + "9" * 5000).encode(), "not valid JSON"),
        (lambda text: text.replace('"threshold": 0.5', '"threshold": 0.9, "threshold": 0.5').encode(),
         "key 'threshold' twice"),
    ],
    ids=["utf16-bom", "utf16-le", "utf8-bom", "deep", "huge-int", "duplicate-key"],
)
def test_malformed_manifest_json_is_refused(damaged: Path, raw, message: str) -> None:
    """#5 and Also: deep nesting (RecursionError), 5000-digit ints (ValueError), UTF-16, BOM, duplicate keys."""
    text = json.dumps(read_manifest(damaged), indent=1)
    assert '"threshold": 0.5' in text
    (damaged / "manifest.json").write_bytes(raw(text))
    with pytest.raises(ModelIntegrityError, match=message):
        load_bundle(damaged)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", ["onnx"], r"artifacts\[0\]\.format \['onnx'\] is unknown"),
        ("precision", {"fp32": 1}, r"artifacts\[0\]\.precision \{'fp32': 1\} is unknown"),
        ("tolerance", float("nan"), r"artifacts\[0\]\.tolerance must be a finite number >= 0"),
        ("tolerance", "0.1", r"artifacts\[0\]\.tolerance must be a finite number >= 0"),
        ("reference_logits", [1.0, "x"], r"artifacts\[0\]\.reference_logits must be a list of finite numbers"),
        ("file", ["eyestate_fp32.onnx"], r"artifacts\[0\]\.file: path \['eyestate_fp32\.onnx'\] must be"),
    ],
)
def test_manifest_values_of_the_wrong_type_are_refused(damaged: Path, field: str, value: object, message: str) -> None:
    """#5, #6: a list as format (TypeError: unhashable), a NaN tolerance (parity check silently off)."""
    manifest = read_manifest(damaged)
    manifest["artifacts"][0][field] = value
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=message):
        load_bundle(damaged)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("std_floor", 0, "std_floor must be a finite number > 0"),
        ("std_floor", -1, "std_floor must be a finite number > 0"),
        ("std_floor", float("nan"), "std_floor must be a finite number > 0"),
        ("std_floor", "0.02", "std_floor must be a finite number > 0"),
        ("std_floor", True, "std_floor must be a finite number > 0"),
        ("size", 24.0, "size must be an int in 8..512"),
        ("size", 0, "size must be an int in 8..512"),
        ("size", 100_000, "size must be an int in 8..512"),
    ],
)
def test_invalid_preprocessing_contract_is_refused(damaged: Path, field: str, value: object, message: str) -> None:
    """#6: std_floor 0 / -1 / NaN / "0.02" and size 24.0 loaded, then failed in predict or gave NaN answers."""
    contract = read_manifest(damaged)["preprocess"]
    edit_manifest(damaged, preprocess={**contract, field: value})
    with pytest.raises(ModelIntegrityError, match=f"manifest key 'preprocess': {message}"):
        load_bundle(damaged)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda probe: _npz(probe), "not a .npy array"),
        (lambda probe: _npy_header((10**11, 1, 32, 32)) + b"\0" * 64, r"declares \(100000000000, 1, 32, 32\)"),
        (lambda probe: _npy_header((2, 1, 32, 32)) + b"\0" * 64, r"declares \(2, 1, 32, 32\)"),
        (lambda probe: b"\x93NUMPY\x01\x00\xff\xff{", "not a .npy array"),
        (lambda probe: b"", "not a .npy array"),
    ],
    ids=["npz", "1e11-rows", "short", "bad-header", "empty"],
)
def test_a_malformed_probe_is_an_integrity_error(damaged: Path, content, message: str) -> None:
    """#17: an .npz named probe.npy (AttributeError) or a header declaring 1e11 rows (MemoryError)."""
    import numpy as np

    probe = np.load(damaged / "probe.npy")
    (damaged / "probe.npy").write_bytes(content(probe))
    rehash(damaged, "probe.npy")
    with pytest.raises(ModelIntegrityError, match=rf"probe file 'probe\.npy'.*{message}"):
        load_bundle(damaged).probe()


def _npz(probe) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, probe=probe)
    return buffer.getvalue()


def test_a_listed_file_that_cannot_be_read_again_is_refused(damaged: Path) -> None:
    verified = load_bundle(damaged)
    (damaged / "probe.npy").unlink()
    with pytest.raises(ModelIntegrityError, match=r"file 'probe\.npy' is missing"):
        verified.probe()
    os.mkfifo(damaged / "probe.npy")
    with pytest.raises(ModelIntegrityError, match=r"file 'probe\.npy' cannot be read: is not a regular file"):
        verified.probe()
    (damaged / "probe.npy").unlink()
    (damaged / "probe.npy").write_bytes(b"short")
    with pytest.raises(ModelIntegrityError, match=r"file 'probe\.npy' is 5 bytes; the manifest says \d+"):
        verified.probe()


@pytest.mark.parametrize(
    "entry",
    [{"sha256": "0" * 63, "size": 1}, {"sha256": "g" * 64, "size": 1}, {"sha256": "0" * 64, "size": -1},
     {"sha256": "0" * 64, "size": True}, {"sha256": "0" * 64, "size": 1.0}, ["sha256", "size"]],
)
def test_checksum_entries_must_be_well_formed(damaged: Path, entry: object) -> None:
    manifest = read_manifest(damaged)
    manifest["files"]["probe.npy"] = entry
    write_manifest(damaged, manifest)
    with pytest.raises(ModelIntegrityError, match=r"files\['probe\.npy'\] must be \{'sha256': 64 hex digits"):
        load_bundle(damaged)


def test_an_onnx_artifact_that_is_not_protobuf_is_refused(damaged: Path) -> None:
    (damaged / "eyestate_fp16.onnx").write_bytes(b"\x3a\xff\xff\xff\xff\x0f not a model")
    rehash(damaged, "eyestate_fp16.onnx")
    with pytest.raises(ModelIntegrityError, match=r"'eyestate_fp16\.onnx' is not a well-formed onnx model"):
        load_bundle(damaged)


def test_a_probe_of_the_wrong_shape_is_refused(damaged: Path) -> None:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 1, 8, 8), np.float32))
    (damaged / "probe.npy").write_bytes(buffer.getvalue())
    rehash(damaged, "probe.npy")
    with pytest.raises(ModelIntegrityError, match=r"probe file 'probe\.npy' has shape \(4, 1, 8, 8\) float32"):
        load_bundle(damaged).probe()
