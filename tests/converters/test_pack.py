"""Packs: exact round trip of crops and index, streaming writes, atomic replacement, every refusal named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import synthetic_eye

from eyesdk.converters import pack as pack_module
from eyesdk.converters.datasets import Sample, read_sources
from eyesdk.converters.pack import Pack, PackError, ShardedCrops, packed_crop, write_pack
from eyesdk.converters.pipeline import prepare_data
from eyesdk.preprocess import PreprocessContract

Image = pytest.importorskip("PIL.Image")
CONTRACT = PreprocessContract(size=24)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Path]:
    """An MRL-like tree (labels and attributes in the names), a CSV with an extra column, and one broken file."""
    root = tmp_path_factory.mktemp("pack-src")
    rng = np.random.default_rng(11)
    mrl = root / "mrl"
    for subject in ("s0001", "s0002"):
        (mrl / subject).mkdir(parents=True)
        for i in range(9):
            name = f"{subject}_{i:05d}_0_{i % 2}_{(i // 2) % 2}_0_1_01.png"
            eye = synthetic_eye(bool((i // 2) % 2), int(rng.integers(20, 70)), rng)
            Image.fromarray(eye).save(mrl / subject / name)
    (mrl / "s0002" / "s0002_00099_0_0_1_0_1_01.png").write_bytes(b"\x89PNG broken")
    csv_dir = root / "csv"
    csv_dir.mkdir()
    lines = ["path,label,subject,camera"]
    for i in range(6):
        Image.fromarray(synthetic_eye(i % 2 == 0, (30, 44), rng)).save(csv_dir / f"c{i}.jpg")
        lines.append(f"c{i}.jpg,{i % 2 == 0:d},person{i // 3},cam{i % 3}")
    (csv_dir / "list.csv").write_text("\n".join(lines) + "\n")
    return [mrl, csv_dir / "list.csv"]


@pytest.fixture(scope="module")
def packed(sources: list[Path], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "pack"
    summary = write_pack(read_sources(sources), out, CONTRACT, shard_size=7, progress=False, inputs=sources)
    assert (summary.count, summary.shards, summary.skipped) == (24, 4, 1)
    return out


def test_round_trip_is_exact(sources: list[Path], packed: Path) -> None:
    samples = [s for s in read_sources(sources) if s.path.name != "s0002_00099_0_0_1_0_1_01.png"]
    pack = Pack([packed])
    assert len(pack) == len(samples) == 24 and pack.contract == CONTRACT
    crops = pack.crops.take(np.arange(24))
    for crop, sample in zip(crops, samples, strict=True):
        assert np.array_equal(crop, packed_crop(sample.path, CONTRACT)), sample.path
    assert pack.table.samples() == samples  # path, label, source, subject, attributes
    np.testing.assert_array_equal(pack.table.labels, [s.label for s in samples])
    assert list(pack.table.source_names()) == [s.source for s in samples]
    loaded = pack.load(np.array([3, 20]))
    assert loaded.x.shape == (2, 24, 24) and loaded.samples == [samples[3], samples[20]]


def test_a_bundle_that_standardizes_in_its_graph_reads_the_pack_resized(packed: Path) -> None:
    pack = Pack([packed])
    rows = np.arange(5)
    in_model = PreprocessContract(size=24, normalization_in_model=True)
    np.testing.assert_array_equal(pack.load(rows, in_model).x, pack.crops.take(rows).astype(np.float32))
    np.testing.assert_array_equal(pack.load(rows, CONTRACT).x, pack.load(rows).x)
    with pytest.raises(ValueError, match=r"the pack holds crops of contract .*, not .*'size': 32"):
        pack.load(rows, PreprocessContract(size=32))


def test_a_pack_written_under_an_in_graph_contract_reads_under_it(sources: list[Path], tmp_path: Path) -> None:
    """A pack made with a bundle's contract (standardization in its graph) is the same crops: its own contract, and
    the training one, read it."""
    in_model = PreprocessContract(size=24, normalization_in_model=True)
    write_pack(read_sources([sources[1]]), tmp_path / "p", in_model, progress=False)
    pack = Pack([tmp_path / "p"])
    rows = np.arange(3)
    np.testing.assert_array_equal(pack.load(rows, in_model).x, pack.crops.take(rows).astype(np.float32))
    np.testing.assert_array_equal(pack.load(rows, CONTRACT).x, Pack([tmp_path / "p"]).load(rows, CONTRACT).x)


def test_skipped_images_are_listed_not_packed(packed: Path) -> None:
    skipped = [json.loads(line) for line in (packed / "skipped.jsonl").read_text().splitlines()]
    assert [Path(s["path"]).name for s in skipped] == ["s0002_00099_0_0_1_0_1_01.png"]
    assert skipped[0]["reason"].startswith("InvalidCropError")
    assert Pack([packed]).skipped == 1
    index = json.loads((packed / "pack.json").read_text())
    assert index["format"] == "eyesdk-pack/1" and index["count"] == 24 and index["skipped"]["count"] == 1


def test_packed_crop_is_the_rounded_contract_resize(sources: list[Path]) -> None:
    from eyesdk.imagefile import read_image
    from eyesdk.preprocess import resize_grey, to_grey

    path = read_sources(sources)[0].path
    resized = resize_grey(to_grey(read_image(path), color="rgb"), 24)
    crop = packed_crop(path, CONTRACT)
    assert crop.dtype == np.uint8 and np.abs(crop - resized).max() <= 0.5


def test_views_index_without_copying(packed: Path) -> None:
    crops = Pack([packed]).crops
    every = crops.take(np.arange(len(crops)))
    mask = np.arange(len(crops)) % 3 == 0
    view = crops[mask]
    assert isinstance(view, ShardedCrops) and len(view) == 8 and view.shape == (8, 24, 24)
    np.testing.assert_array_equal(view.take([7, 0, 0]), every[mask][[7, 0, 0]])  # any order, repeats
    np.testing.assert_array_equal(view[2:4].take([1]), every[mask][3:4])
    np.testing.assert_array_equal(crops[5], every[5])
    np.testing.assert_array_equal(np.asarray(view), every[mask])
    with pytest.raises(ValueError, match="axis must be 0"):
        crops.take([0], axis=1)


def test_training_and_cv_read_a_pack(packed: Path, tmp_path: Path) -> None:
    data = prepare_data([packed], tmp_path / "folds.json", k=2, contract=CONTRACT, progress=False)
    assert isinstance(data.x, ShardedCrops) and data.summary["images"] == 24 and data.summary["unreadable"] == 1
    assert set(data.table.subjects) == {"mrl:s0001", "mrl:s0002", "csv:person0", "csv:person1"}
    from eyesdk.converters.cli import main

    result = CliRunner().invoke(main, ["train", "--data", str(packed), "--folds", str(tmp_path / "folds.json"),
                                       "--widths", "4,8", "--epochs", "1", "--samples-per-epoch", "128",
                                       "--batch-size", "64", "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.pt").exists() and "== val (fold 0) ==" in result.output


def test_pack_command_and_its_refusals(sources: list[Path], tmp_path: Path) -> None:
    from eyesdk.converters.cli import main

    runner = CliRunner()
    out = tmp_path / "p"
    result = runner.invoke(main, ["pack", "--data", str(sources[1]), "--out", str(out), "--size", "24", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"pack {out}: 6 crops of 24 x 24 in 1 shard(s)")
    result = runner.invoke(main, ["pack", "--data", str(sources[0]), "--out", str(out), "--quiet"])
    assert result.exit_code == 0 and "skipped 1 unreadable images" in result.output  # replaced the old pack
    assert Pack([out]).table.sources.tolist() == ["mrl"]
    result = runner.invoke(main, ["pack", "--data", str(out), "--out", str(tmp_path / "q")])
    assert result.exit_code == 2 and "is already a pack" in result.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="non-empty directory without pack.json, so it is not an eyesdk pack"):
        write_pack(read_sources([sources[1]]), tmp_path / "mine", CONTRACT, progress=False)


def test_packs_are_read_together_with_merged_tables(sources: list[Path], tmp_path: Path) -> None:
    write_pack(read_sources([sources[1]]), tmp_path / "a", CONTRACT, progress=False)
    write_pack(read_sources([sources[0]]), tmp_path / "b", CONTRACT, progress=False)
    both = Pack([tmp_path / "a", tmp_path / "b"])
    assert len(both) == 6 + 18 and list(both.table.sources) == ["csv", "mrl"]
    assert list(both.table.subjects) == sorted(both.table.subjects)
    samples = both.table.samples()
    assert [s.source for s in samples] == ["csv"] * 6 + ["mrl"] * 18
    assert [both.table.subjects[c] for c in both.table.subject_codes] == [s.subject for s in samples]


def test_writing_streams_a_bounded_window(monkeypatch) -> None:
    """The decoder never runs more than its window ahead of what has been written: memory does not grow with N."""
    pulled = 0

    def samples():
        nonlocal pulled
        for i in range(2000):
            pulled += 1
            yield Sample(Path(f"{i}.png"), i % 2, "t", f"t:{i}")

    monkeypatch.setattr(pack_module, "packed_crop", lambda path, contract: np.zeros((24, 24), np.uint8))
    ahead = 0
    for done, _ in enumerate(pack_module._decoded(samples(), CONTRACT, workers=2), start=1):
        ahead = max(ahead, pulled - done)
    assert done == 2000 and ahead <= 128


def _corrupt(packed: Path, tmp_path: Path, edit) -> Path:
    import shutil

    copy = tmp_path / "bad"
    shutil.copytree(packed, copy)
    edit(copy)
    return copy


def _index_edit(change):
    def edit(root: Path) -> None:
        index = json.loads((root / "pack.json").read_text())
        change(index)
        (root / "pack.json").write_text(json.dumps(index))

    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (lambda root: (root / "pack.json").unlink(), "is not a pack: it has no pack.json"),
    (lambda root: (root / "pack.json").write_text("{"), "unreadable pack index"),
    (_index_edit(lambda ix: ix.update(format="other/1")), "not a pack index \\(format 'other/1'"),
    (_index_edit(lambda ix: ix.pop("subjects")), "pack index lacks 'subjects'"),
    (_index_edit(lambda ix: ix.update(count=25)), "its shards hold 24 crops, the index says 25"),
    (_index_edit(lambda ix: ix.update(shards=[])), "the pack holds no shards"),
    (_index_edit(lambda ix: ix["shards"][0].update(crops="../x.npy")), "names no plain file for 'crops'"),
    (_index_edit(lambda ix: (ix["shards"][0].update(count=6), ix.update(count=23))), "holds uint8 \\(7, 24, 24\\)"),
    (_index_edit(lambda ix: ix["contract"].update(resize="bicubic")), "unsupported preprocessing contract"),
    (lambda root: (root / "crops-00001.npy").write_bytes(b"junk"), "shard crops-00001.npy is unreadable"),
    (lambda root: np.save(root / "rows-00002.npy", np.zeros(7, np.int64)), "expected 7 index rows"),
    (_index_edit(lambda ix: ix.update(subjects=ix["subjects"][:1])), "codes must index the pack.json tables"),
])
def test_damaged_packs_are_refused_with_the_reason(packed: Path, tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(PackError, match=message):
        Pack([_corrupt(packed, tmp_path, edit)])


def test_what_cannot_be_read_together_is_refused(sources: list[Path], packed: Path, tmp_path: Path) -> None:
    write_pack(read_sources([sources[1]]), tmp_path / "p32", PreprocessContract(size=32), progress=False)
    with pytest.raises(PackError, match="different preprocessing contracts"):
        Pack([packed, tmp_path / "p32"])
    with pytest.raises(PackError, match="no pack given"):
        Pack([])
    with pytest.raises(PackError, match="list.csv is not packed while .* is: pack every source"):
        prepare_data([packed, sources[1]], tmp_path / "f.json", progress=False)
    with pytest.raises(PackError, match="holds 24 px crops .* pass --size 24 or pack again"):
        prepare_data([packed], tmp_path / "f.json", contract=PreprocessContract(size=32), progress=False)


def test_writer_refusals(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "x.png").write_bytes(b"no image")
    broken = [Sample(tmp_path / "x.png", 1, "t", "t:x")]
    with pytest.raises(PackError, match="none of the 1 images could be decoded .*no pack was written"):
        write_pack(broken, tmp_path / "out", CONTRACT, progress=False)
    with pytest.raises(PackError, match="no images to pack"):
        write_pack([], tmp_path / "out", CONTRACT, progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="shard_size must be a positive integer, got 0"):
        write_pack(broken, tmp_path / "out", CONTRACT, shard_size=0, progress=False)
    codes = pack_module._Codes(limit=2)
    codes("a"), codes("b")
    with pytest.raises(PackError, match="more than 2 distinct values \\('c'\\)"):
        codes("c")
