"""tools/perf_docs.py: finding our ../shared inputs and the eyesdk-bench commands it runs (on a synthetic tree)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "perf_docs.py"


def _load():
    spec = importlib.util.spec_from_file_location("perf_docs", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules["perf_docs"] = module
    spec.loader.exec_module(module)
    return module


perf_docs = _load()


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    image_module = pytest.importorskip("PIL.Image")
    mrl = tmp_path / "shared" / perf_docs.MRL / "s0001"
    mrl.mkdir(parents=True)
    for name, side in (("a.png", 40), ("b.png", 88), ("c.png", 91)):
        image_module.fromarray(np.zeros((side, side), np.uint8)).save(mrl / name)
    peer = tmp_path / "shared" / perf_docs.PEER
    peer.parent.mkdir(parents=True)
    peer.write_bytes(b"onnx")
    return tmp_path / "shared"


def test_find_crop_takes_the_first_image_near_the_side(shared: Path) -> None:
    assert perf_docs.find_crop(shared / perf_docs.MRL).name == "b.png"
    assert perf_docs.find_crop(shared / perf_docs.MRL, side=40).name == "a.png"
    with pytest.raises(FileNotFoundError, match=r"no image of 200±4 px among the first 4000"):
        perf_docs.find_crop(shared / perf_docs.MRL, side=200)
    with pytest.raises(FileNotFoundError, match="no MRL folder at"):
        perf_docs.find_crop(shared / "nothing")


def test_commands_spell_out_the_peer_and_crop(shared: Path, tmp_path: Path) -> None:
    crop = shared / "crop.png"
    lines = perf_docs.commands(shared, crop)
    assert lines[0] == ["peer-latency", "--all", "--peer", f"omz-open-closed-eye:{shared / perf_docs.PEER}",
                        "--crop", str(crop)]
    assert lines[1][0] == "throughput"
    with pytest.raises(FileNotFoundError, match="the peer model is not at"):
        perf_docs.commands(tmp_path / "elsewhere", crop)


def test_dry_run_prints_the_commands(shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert perf_docs.main(["--shared", str(shared), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("$ eyesdk-bench peer-latency --all --peer omz-open-closed-eye:") and "b.png" in out[0]
    assert perf_docs.main(["--shared", str(shared / "none")]) == 2
    assert "perf_docs: no MRL folder" in capsys.readouterr().err
