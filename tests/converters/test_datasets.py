"""Readers for every layout on tiny synthetic trees, the loader's bad files and cache, real-data counts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import synthetic_eye

from eyesdk.converters.datasets import (
    LabelError,
    Sample,
    load_crops,
    read_cew,
    read_class_folders,
    read_manifest_csv,
    read_mrl,
    read_source,
    read_sources,
    summarize,
)
from eyesdk.imagefile import read_image
from eyesdk.preprocess import PreprocessContract, preprocess_grey, resize_grey, to_grey

RNG = np.random.default_rng(0)


def _write(path: Path, open_eye: bool = True, size: int = 24) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(synthetic_eye(open_eye, size, RNG)).save(path)
    return path


def _mrl_tree(root: Path) -> Path:
    _write(root / "s0001" / "s0001_00001_0_0_1_0_1_01.png", True)
    _write(root / "s0001" / "s0001_00002_0_0_0_2_0_01.png", False)
    _write(root / "s0001" / "s0001_00003_0_1_1_1_1_02.png", True)
    _write(root / "s0002" / "s0002_00001_1_0_0_0_1_03.png", False)
    _write(root / "s0002" / "s0002_00002_1_0_1_0_1_03.png", True)
    (root / "s0002" / "notes.txt").write_text("not an image")
    (root / "s0002" / ".DS_Store").write_bytes(b"\0")
    return root


def _cew_tree(root: Path) -> Path:
    inner = root / "dataset_B_Eye_Images"
    _write(inner / "openLeftEyes" / "Aaron_Eckhart_0001_L.jpg", True)
    _write(inner / "openRightEyes" / "Aaron_Eckhart_0001_R.jpg", True)
    _write(inner / "openLeftEyes" / "Ana_Maria_Guerra_0002_L.jpg", True)
    _write(inner / "closedLeftEyes" / "closed_eye_0002.jpg_face_2_L.jpg", False)
    _write(inner / "closedRightEyes" / "closed_eye_0002.jpg_face_2_R.jpg", False)
    _write(inner / "closedRightEyes" / "closed_eye_0013.BMP_face_1_R.jpg", False)
    return root


# ---- MRL


def test_read_mrl_labels_subjects_and_attrs(tmp_path: Path) -> None:
    samples = read_mrl(_mrl_tree(tmp_path / "mrl"))
    assert len(samples) == 5
    assert [s.label for s in samples] == [1, 0, 1, 0, 1]
    assert {s.subject for s in samples} == {"mrl:s0001", "mrl:s0002"}
    assert {s.source for s in samples} == {"mrl"}
    first = samples[1]
    assert first.attrs == {
        "gender": "man", "glasses": "no", "reflections": "big", "lighting": "bad", "sensor": "realsense",
        "image_id": "00002",
    }
    assert samples[3].attrs["gender"] == "woman" and samples[3].attrs["sensor"] == "aptina"


def test_read_mrl_accepts_one_subject_folder(tmp_path: Path) -> None:
    samples = read_mrl(_mrl_tree(tmp_path / "mrl") / "s0002")
    assert len(samples) == 2 and {s.subject for s in samples} == {"mrl:s0002"}


def test_mrl_subject_must_match_folder(tmp_path: Path) -> None:
    root = _mrl_tree(tmp_path / "mrl")
    _write(root / "s0002" / "s0001_00009_0_0_1_0_1_01.png")
    with pytest.raises(LabelError, match=r"s0001_00009_0_0_1_0_1_01\.png: the file name says subject s0001"):
        read_mrl(root)


def test_mrl_unparseable_name(tmp_path: Path) -> None:
    root = _mrl_tree(tmp_path / "mrl")
    _write(root / "s0001" / "s0001_00009_0_0_7_0_1_01.png")  # eye state 7
    with pytest.raises(LabelError, match=r"s0001_00009_0_0_7_0_1_01\.png: not an MRL file name"):
        read_mrl(root)


def test_mrl_image_outside_subject_folder(tmp_path: Path) -> None:
    root = _mrl_tree(tmp_path / "mrl")
    _write(root / "s0001_00009_0_0_1_0_1_01.png")
    with pytest.raises(LabelError, match="must lie in subject folders"):
        read_mrl(root)


def test_mrl_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no MRL images found"):
        read_mrl(tmp_path / "empty")


# ---- CEW


def test_read_cew_from_parent_or_inner_folder(tmp_path: Path) -> None:
    root = _cew_tree(tmp_path / "cew")
    samples = read_cew(root)
    assert samples == read_cew(root / "dataset_B_Eye_Images")
    assert len(samples) == 6
    by_name = {s.path.name: s for s in samples}
    assert by_name["Aaron_Eckhart_0001_L.jpg"].subject == "cew:Aaron_Eckhart"
    assert by_name["Aaron_Eckhart_0001_R.jpg"].subject == "cew:Aaron_Eckhart"
    assert by_name["Ana_Maria_Guerra_0002_L.jpg"].subject == "cew:Ana_Maria_Guerra"
    assert by_name["closed_eye_0002.jpg_face_2_R.jpg"].subject == "cew:closed_eye_0002"
    assert by_name["closed_eye_0013.BMP_face_1_R.jpg"].attrs == {"side": "R"}
    assert sum(s.label for s in samples) == 3


def test_cew_side_disagreement(tmp_path: Path) -> None:
    root = _cew_tree(tmp_path / "cew")
    _write(root / "dataset_B_Eye_Images" / "openRightEyes" / "Bob_0001_L.jpg")
    with pytest.raises(LabelError, match=r"Bob_0001_L\.jpg: the file name says side L .*openRightEyes"):
        read_cew(root)


def test_cew_closed_name_in_open_folder(tmp_path: Path) -> None:
    root = _cew_tree(tmp_path / "cew")
    _write(root / "dataset_B_Eye_Images" / "openLeftEyes" / "closed_eye_0100.jpg_face_1_L.jpg")
    with pytest.raises(LabelError, match=r"closed_eye_0100\.jpg_face_1_L\.jpg: a closed-eye .* openLeftEyes"):
        read_cew(root)


def test_cew_open_name_in_closed_folder(tmp_path: Path) -> None:
    root = _cew_tree(tmp_path / "cew")
    _write(root / "dataset_B_Eye_Images" / "closedLeftEyes" / "Bob_0001_L.jpg")
    with pytest.raises(LabelError, match=r"Bob_0001_L\.jpg: a open-eye \(LFW person\) file name"):
        read_cew(root)


def test_cew_unknown_name(tmp_path: Path) -> None:
    root = _cew_tree(tmp_path / "cew")
    _write(root / "dataset_B_Eye_Images" / "closedLeftEyes" / "whatever.jpg")
    with pytest.raises(LabelError, match=r"whatever\.jpg: not a CEW file name"):
        read_cew(root)


def test_cew_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="no CEW folders"):
        read_cew(tmp_path / "x")


# ---- class folders


def test_class_folders_keep_sets_and_people_apart(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    _write(root / "setA" / "open" / "1.png", True)
    _write(root / "setA" / "closed" / "2.jpg", False)
    _write(root / "setB" / "Open" / "alice" / "1.png", True)
    _write(root / "setB" / "CLOSED" / "alice" / "2.bmp", False)
    _write(root / "setB" / "closed" / "bob" / "deeper" / "3.jpeg", False)
    (root / "setA" / "open" / "readme.md").write_text("x")
    (root / "setA" / "open" / "._1.png").write_bytes(b"\0")  # macOS resource fork, not an image
    samples = read_class_folders(root)
    subjects = {(s.path.name, s.subject, s.label) for s in samples}
    assert ("1.png", "folder:mine/setA", 1) in subjects
    assert ("2.jpg", "folder:mine/setA", 0) in subjects
    assert ("1.png", "folder:mine/setB/alice", 1) in subjects
    assert ("2.bmp", "folder:mine/setB/alice", 0) in subjects
    assert ("3.jpeg", "folder:mine/setB/bob", 0) in subjects
    assert len(samples) == 5 and {s.source for s in samples} == {"folder"}


def test_class_folders_at_root(tmp_path: Path) -> None:
    _write(tmp_path / "eyes" / "open" / "a.png")
    assert [s.subject for s in read_class_folders(tmp_path / "eyes")] == ["folder:eyes"]


def test_class_folders_without_images(tmp_path: Path) -> None:
    (tmp_path / "eyes" / "open").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"eyes: no png/jpg/jpeg/bmp images in any open/ or closed/ folder"):
        read_class_folders(tmp_path / "eyes")


# ---- CSV manifest


def test_manifest_relative_paths_labels_and_attrs(tmp_path: Path) -> None:
    _write(tmp_path / "imgs" / "a.png")
    _write(tmp_path / "imgs" / "b.png", False)
    other = _write(tmp_path / "elsewhere" / "c.png")
    (tmp_path / "lists").mkdir()
    manifest = tmp_path / "lists" / "m.csv"
    manifest.write_text(
        "path,label,subject,camera\n"
        "../imgs/a.png,open,p1,webcam\n"
        f"../imgs/b.png,CLOSED,,phone\n{other},1,p1,ir\n"
    )
    samples = read_manifest_csv(manifest)
    assert [s.label for s in samples] == [1, 0, 1]
    assert [s.subject for s in samples] == ["csv:p1", "csv:b", "csv:p1"]
    assert samples[0].path.resolve() == (tmp_path / "imgs" / "a.png").resolve()
    assert samples[2].path == other
    assert samples[1].attrs == {"camera": "phone"}
    assert {s.source for s in samples} == {"csv"}
    assert read_image(samples[0].path).shape == (24, 24)


def test_manifest_bad_label(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.png,0\nb.png,maybe\n")
    with pytest.raises(LabelError, match=r"m\.csv row 3: label 'maybe' is not one of 0, 1, open, closed"):
        read_manifest_csv(manifest)


def test_manifest_missing_columns(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,state\na.png,0\n")
    with pytest.raises(LabelError, match=r"m\.csv: needs a header with columns path,label"):
        read_manifest_csv(manifest)


def test_manifest_empty_path(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n,0\n")
    with pytest.raises(LabelError, match=r"m\.csv row 2: empty path"):
        read_manifest_csv(manifest)


def test_manifest_field_over_the_csv_limit_is_a_label_error(tmp_path: Path) -> None:
    """Issue 14 #14: a field over csv.field_size_limit() (131,072 characters) is a named error, not _csv.Error."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.png,0\n" + "x" * 140_000 + ".png,1\n")
    with pytest.raises(LabelError, match=r"m\.csv line 3: not a readable CSV manifest row \(field larger than"):
        read_manifest_csv(manifest)


# ---- detection and combination


def test_read_source_detects_each_layout(tmp_path: Path) -> None:
    mrl = _mrl_tree(tmp_path / "mrl")
    cew = _cew_tree(tmp_path / "cew")
    _write(tmp_path / "mine" / "open" / "a.png")
    (tmp_path / "m.csv").write_text("path,label\nmine/open/a.png,1\n")
    assert {s.source for s in read_source(mrl)} == {"mrl"}
    assert {s.source for s in read_source(mrl / "s0001")} == {"mrl"}
    assert {s.source for s in read_source(cew)} == {"cew"}
    assert {s.source for s in read_source(cew / "dataset_B_Eye_Images")} == {"cew"}
    assert {s.source for s in read_source(tmp_path / "mine")} == {"folder"}
    assert {s.source for s in read_source(str(tmp_path / "m.csv"))} == {"csv"}


def test_read_source_of_a_parent_reads_the_datasets_below(tmp_path: Path) -> None:
    _mrl_tree(tmp_path / "data" / "mrlEyes")
    _cew_tree(tmp_path / "data" / "cew")
    samples = read_source(tmp_path / "data")
    assert summarize(samples)["sources"]["mrl"]["images"] == 5
    assert summarize(samples)["sources"]["cew"]["images"] == 6


def test_read_source_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no eye data recognised"):
        read_source(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match=r"x\.txt is a file but not a \.csv manifest"):
        read_source(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_source(tmp_path / "missing")


def test_read_sources_combines_and_deduplicates(tmp_path: Path) -> None:
    mrl = _mrl_tree(tmp_path / "mrl")
    cew = _cew_tree(tmp_path / "cew")
    (tmp_path / "m.csv").write_text("path,label\nmrl/s0001/s0001_00001_0_0_1_0_1_01.png,open\n")
    samples = read_sources([mrl, cew, tmp_path / "m.csv"])
    assert len(samples) == 11
    (tmp_path / "bad.csv").write_text("path,label\nmrl/s0001/s0001_00001_0_0_1_0_1_01.png,closed\n")
    with pytest.raises(LabelError, match=r"s0001_00001_0_0_1_0_1_01\.png: labelled open by one source"):
        read_sources([mrl, tmp_path / "bad.csv"])


def test_summarize(tmp_path: Path) -> None:
    summary = summarize(read_mrl(_mrl_tree(tmp_path / "mrl")))
    assert summary["images"] == 5 and summary["open"] == 3 and summary["closed"] == 2
    assert summary["subjects"] == 2
    assert summary["sources"]["mrl"]["images_per_subject"] == {"min": 2, "median": 3, "max": 3}


# ---- loading


def test_load_crops_skips_bad_files(tmp_path: Path) -> None:
    good = [_write(tmp_path / f"{i}.png", i % 2 == 0, size=16 + 8 * i) for i in range(3)]
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(good[0].read_bytes()[:60])
    zero, corrupt, gone = tmp_path / "zero.png", tmp_path / "corrupt.png", tmp_path / "gone.png"
    paths = [good[0], zero, good[1], corrupt, good[2], gone]
    samples = [Sample(p, 1 if i % 2 == 0 else 0, "test", f"t:{i}") for i, p in enumerate(paths)]
    loaded = load_crops(samples, PreprocessContract(size=16), progress=False)
    assert loaded.x.shape == (3, 16, 16) and loaded.x.dtype == np.float32
    assert [s.path for s in loaded.samples] == good
    assert loaded.y.tolist() == [1, 1, 1] and loaded.y.dtype == np.uint8
    assert {p.name: reason.split(":")[0] for p, reason in loaded.bad} == {
        "zero.png": "InvalidCropError", "corrupt.png": "InvalidCropError", "gone.png": "FileNotFoundError",
    }
    expected = preprocess_grey(to_grey(read_image(good[1]), color="rgb"), PreprocessContract(size=16))
    np.testing.assert_array_equal(loaded.x[1], expected)


def test_load_crops_resized_only(tmp_path: Path) -> None:
    samples = [Sample(_write(tmp_path / "a.png"), 1, "test", "t:a")]
    loaded = load_crops(samples, progress=False, standardized=False)
    assert loaded.x.shape == (1, 32, 32)
    expected = resize_grey(to_grey(read_image(samples[0].path), color="rgb"), 32)  # [0, 255], nothing rescaled
    np.testing.assert_array_equal(loaded.x[0], expected)


def test_load_crops_cache(tmp_path: Path) -> None:
    root = _mrl_tree(tmp_path / "mrl")
    (root / "s0001" / "s0001_00004_0_0_1_0_1_01.png").write_bytes(b"")
    samples = read_mrl(root)
    cache = tmp_path / "cache"
    first = load_crops(samples, cache_dir=cache, progress=False)
    second = load_crops(list(reversed(samples)), cache_dir=cache, progress=False)
    assert not first.cache_hit and second.cache_hit
    assert len(list(cache.iterdir())) == 1  # no temporary files left behind
    order = [second.samples.index(s) for s in first.samples]
    np.testing.assert_array_equal(second.x[order], first.x)
    np.testing.assert_array_equal(second.y[order], first.y)
    assert len(second.bad) == 1 and second.bad[0][1].startswith("InvalidCropError")
    # a changed file is a cache miss
    changed = samples[0].path
    _write(changed, size=30)
    os.utime(changed, ns=(1, 1))
    third = load_crops(samples, cache_dir=cache, progress=False)
    assert not third.cache_hit and len(list(cache.glob("*.npz"))) == 2


def test_load_crops_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    load_crops([Sample(_write(tmp_path / "a.png"), 1, "test", "t:a")], progress=True)
    assert "decoding crops" in capsys.readouterr().err


# ---- real data (counts only, never decodes)


@pytest.mark.real_data
def test_real_mrl_counts(shared_data: Path) -> None:
    samples = read_source(shared_data / "mrlEyes_2018_01")
    assert len(samples) == 45_322
    assert len({s.subject for s in samples}) == 29
    assert {s.source for s in samples} == {"mrl"}


@pytest.mark.real_data
def test_real_cew_counts(shared_data: Path) -> None:
    samples = read_source(shared_data / "cew")
    folders = {}
    for s in samples:
        folders[s.path.parent.name] = folders.get(s.path.parent.name, 0) + 1
    assert folders == {
        "closedLeftEyes": 873, "closedRightEyes": 882, "openLeftEyes": 930, "openRightEyes": 930
    }
    assert sum(s.label == 0 for s in samples) == 873 + 882


@pytest.mark.real_data
def test_real_parent_folder_reads_both(shared_data: Path) -> None:
    summary = summarize(read_source(shared_data))
    assert summary["images"] == 45_322 + 3_615
    assert set(summary["sources"]) == {"mrl", "cew"}
