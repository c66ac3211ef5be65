"""`eyesdk-convert train | evaluate | cv` end to end on a tiny synthetic open/closed tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from synthetic import synthetic_eye

from eyesdk.converters.cli import main


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Four 'people', each with open/ and closed/ folders: class-folder layout, subject = person."""
    root = tmp_path_factory.mktemp("eyes")
    rng = np.random.default_rng(0)
    for person in range(4):
        for label in ("open", "closed"):
            folder = root / f"p{person}" / label
            folder.mkdir(parents=True)
            for i in range(30):
                img = synthetic_eye(label == "open", int(rng.integers(24, 48)), rng)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def _common(tree: Path, tmp: Path) -> list[str]:
    return ["--data", str(tree), "--folds", str(tmp / "folds.json"), "--cache", str(tmp / "cache"), "--k", "4",
            "--widths", "4,8", "--epochs", "2", "--samples-per-epoch", "256", "--quiet"]


def test_train_then_evaluate(tree: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(main, ["train", *_common(tree, tmp_path), "--out", str(out), "--test-fold", "1"])
    assert result.exit_code == 0, result.output
    assert "== val (fold 0) ==" in result.output and "== test (fold 1) ==" in result.output
    assert "verdict:" in result.output
    folds = json.loads((tmp_path / "folds.json").read_text())
    assert folds["folds"] == 4
    report = json.loads((out / "report.json").read_text())
    assert set(report["test"]["overall"]) >= {"acc", "bacc", "f1", "auc", "ece", "ks"}
    assert "diagnostics" in report["val"] and report["val"]["per_source"]

    result = runner.invoke(main, ["evaluate", "--checkpoint", str(out / "best.pt"), "--data", str(tree),
                                  "--folds", str(tmp_path / "folds.json"), "--cache", str(tmp_path / "cache"),
                                  "--json", str(tmp_path / "eval.json"), "--quiet"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["folds"] == [0, 1]
    assert evaluated["overall"]["n"] == report["val"]["overall"]["n"] + report["test"]["overall"]["n"]


def test_cv_reports_mean_and_std(tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["cv", *_common(tree, tmp_path), "--out", str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert len(cv["folds"]) == 4
    assert set(cv["summary"]["overall"]["bacc"]) == {"mean", "std"}
    assert "±" in result.output
    # pooled out-of-fold temperature, leave-one-fold-out ECE, subject intervals, and the arrays for label audits
    assert cv["oof"]["pooled_temperature"] > 0 and "pooled out-of-fold temperature" in result.output
    oof = np.load(tmp_path / "cv" / "oof.npz")
    assert len(oof["logits"]) == sum(f["overall"]["n"] for f in cv["folds"]) and set(oof["folds"]) == {0, 1, 2, 3}
    for source in cv["oof"]["per_source"].values():
        lo, hi = source["bacc_interval_95"]
        assert lo <= source["pooled"]["bacc"] <= hi


def test_bad_fold_choice_is_refused(tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", *_common(tree, tmp_path), "--out", str(tmp_path / "x"),
                                       "--val-fold", "2", "--test-fold", "2"])
    assert result.exit_code != 0
    assert "folds must be distinct" in result.output
