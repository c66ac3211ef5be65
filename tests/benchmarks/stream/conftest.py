"""A tiny MRL-layout tree of synthetic eyes with a folds file, so the stream benchmarks run without real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bundle_folds import shipped_folds
from synthetic import synthetic_eye


@pytest.fixture(scope="session")
def tiny_mrl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, int]:
    """(MRL root with subjects s0001..s0003, a folds file, trained fold (s0001), held-out fold (s0002, s0003))."""
    from PIL import Image

    root = tmp_path_factory.mktemp("mrl")
    rng = np.random.default_rng(11)
    for subject in ("s0001", "s0002", "s0003"):
        folder = root / subject
        folder.mkdir()
        for i in range(40):
            state = 0 if i < 16 else 1  # MRL order: closed first, then open
            Image.fromarray(synthetic_eye(bool(state), 56, rng)).save(
                folder / f"{subject}_{i:05d}_0_0_{state}_0_1_01.png")
    trained, held = shipped_folds()
    folds = root.parent / "folds.json"
    document = {"format": "eyesdk-folds/1", "folds": max(trained, held) + 1, "meta": {}, "fold_summary": [],
                "subjects": {"mrl:s0001": trained, "mrl:s0002": held, "mrl:s0003": held}}
    folds.write_text(json.dumps(document))
    return root, folds, trained, held
