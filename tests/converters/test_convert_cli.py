"""`eyesdk-convert train | evaluate | cv` end to end on a tiny synthetic open/closed tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import write_eye_tree

from eyesdk.converters.cli import main


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Four 'people', each with open/ and closed/ folders: class-folder layout, subject = person."""
    pytest.importorskip("PIL.Image")
    return write_eye_tree(tmp_path_factory.mktemp("eyes"))


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
    import torch

    summary = torch.load(out / "best.pt", weights_only=True)["data_summary"]  # the manifest's `training` section
    assert summary["train_folds"] == [2, 3] and (summary["val_fold"], summary["test_fold"]) == (0, 1)
    assert summary["folds_file"] == str(tmp_path / "folds.json")
    assert summary["mrl_subjects"] == {"train": [], "val": [], "test": []}  # class folders: no MRL subjects

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


_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # what a runtime-only install looks like to an import
from eyesdk.converters.cli import main
sys.argv = ["eyesdk-convert", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["pack", "--help"]])
def test_help_works_without_torch(args: list[str]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage: eyesdk-convert" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["train", "cv", "export", "build", "evaluate"])
def test_commands_needing_torch_say_which_extra_in_one_line(command: str, tree: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    args = {"train": ["--data", str(tree)], "cv": ["--data", str(tree)], "export": ["--checkpoint", __file__,
            "--data", str(tree)], "build": ["--data", str(tree)], "evaluate": ["--checkpoint", __file__, "--data",
            str(tree)]}[command]
    done = subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, command, *args, "--folds", str(tmp_path / "f.json"),
                           "--cache", str(tmp_path / "c")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: eyesdk-convert {command} needs torch, which the training extra installs: pip install 'eyesdk[train]'"]


def test_other_missing_modules_are_not_blamed_on_the_extra(monkeypatch) -> None:
    from eyesdk.converters import cli

    @cli.main.command("broken")
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'nosuchthing'", name="nosuchthing")

    try:
        with pytest.raises(ModuleNotFoundError, match="nosuchthing"):
            CliRunner().invoke(cli.main, ["broken"], catch_exceptions=False)
    finally:
        cli.main.commands.pop("broken")


def test_defaults_come_from_train_config(tree: Path, tmp_path: Path, monkeypatch) -> None:
    from eyesdk.converters import cli
    from eyesdk.converters.train import TrainConfig

    seen = {}
    monkeypatch.setattr(cli, "_prepare", lambda kw, show=True: "data")
    monkeypatch.setattr(cli, "_train_one", lambda data, out, cfg, *a, **k: seen.setdefault("cfg", cfg))
    result = CliRunner().invoke(main, ["train", "--data", str(tree), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert seen["cfg"] == TrainConfig()
    help_text = CliRunner().invoke(main, ["train", "--help"], terminal_width=200).output
    assert "[default: 40000]" in help_text and f"[default: {TrainConfig().layers}]" in help_text


@pytest.mark.parametrize(("widths", "message"), [("4,x", "is not a comma list of conv widths"),
                                                 ("4,0", "conv widths must be integers >= 1")])
def test_bad_widths_are_refused(widths: str, message: str, tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--data", str(tree), "--widths", widths, "--out", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output


def test_widths_keep_layer_order_and_repeats(tree: Path, tmp_path: Path, monkeypatch) -> None:
    from eyesdk.converters import cli

    seen = {}
    monkeypatch.setattr(cli, "_prepare", lambda kw, show=True: "data")
    monkeypatch.setattr(cli, "_train_one", lambda data, out, cfg, *a, **k: seen.setdefault("cfg", cfg))
    result = CliRunner().invoke(main, ["train", "--data", str(tree), "--widths", "8, 4", "--extra", "16,16",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen["cfg"].widths == (8, 4) and seen["cfg"].extra == (16, 16)


def test_layer_spec_and_teacher_ensemble_reach_the_config(tree: Path, tmp_path: Path, monkeypatch) -> None:
    from eyesdk.converters import cli
    from eyesdk.converters.train import TrainConfig

    seen = {}
    monkeypatch.setattr(cli, "_prepare", lambda kw, show=True: "data")
    monkeypatch.setattr(cli, "_train_one", lambda data, out, cfg, *a, **k: seen.setdefault("cfg", cfg))
    teacher = tmp_path / "t.pt"
    teacher.write_bytes(b"")
    result = CliRunner().invoke(main, ["train", "--data", str(tree), "--layers", "p16/2,c32/2  d64/2", "--teacher",
                                       str(teacher), "--teacher", str(teacher), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen["cfg"].layers == "p16/2 c32/2 d64/2" and seen["cfg"].widths == ()
    assert seen["cfg"].teacher == [str(teacher)] * 2
    seen.clear()
    result = CliRunner().invoke(main, ["train", "--data", str(tree), "--out", str(tmp_path)])
    assert seen["cfg"].layers == TrainConfig().layers and seen["cfg"].teacher is None


def test_bad_layer_spec_is_refused(tree: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train", "--data", str(tree), "--layers", "c16/2 q8", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad layer token 'q8'" in result.output


def test_a_csv_field_over_the_limit_is_a_one_line_cli_error(tmp_path: Path) -> None:
    """Issue 14 #14 through the command line: `Error: ...` and exit status 1, no `_csv.Error` traceback."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n" + "x" * 140_000 + ".png,1\n")
    result = CliRunner().invoke(main, ["train", "--data", str(manifest), "--out", str(tmp_path / "o"),
                                       "--folds", str(tmp_path / "f.json"), "--quiet"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "line 2: not a readable CSV manifest row" in result.output
    assert "Traceback" not in result.output and result.exception is not None


def test_temperature_option_reads_a_number_or_a_cv_json(tmp_path: Path) -> None:
    from eyesdk.converters.cli_export import _temperature

    assert _temperature(None, None, None) is None
    assert _temperature(None, None, "1.5") == 1.5
    cv = tmp_path / "cv.json"
    cv.write_text(json.dumps({"oof": {"pooled_temperature": 1.1}}))
    assert _temperature(None, None, str(cv)) == 1.1
    import click

    with pytest.raises(click.BadParameter, match="temperature must be > 0"):
        _temperature(None, None, "0")
    with pytest.raises(click.BadParameter, match="neither a number nor a readable cv.json"):
        _temperature(None, None, str(tmp_path / "missing.json"))


def test_cv_val_offset_and_per_fold_teachers(tree: Path, tmp_path: Path, monkeypatch) -> None:
    """--fold-teacher gives fold i the teachers of a teacher CV's fold i (never trained on fold i's subjects)."""
    from types import SimpleNamespace

    from eyesdk.converters import cli, crossval, pipeline

    for i in range(4):
        (tmp_path / f"t{i}.pt").write_bytes(b"")
    seen = []
    monkeypatch.setattr(cli, "_prepare", lambda kw, show=True: SimpleNamespace(folds=np.array([0, 1, 2, 3])))
    monkeypatch.setattr(cli, "_train_one", lambda data, out, cfg, val, test, *a, **k:
                        seen.append((test, val, cfg.teacher)) or {"test": {}})
    monkeypatch.setattr(cli, "summarize_folds", lambda reports: {})
    monkeypatch.setattr(cli, "format_cv", lambda summary: "")
    monkeypatch.setattr(pipeline, "write_json", lambda *a: None)
    fake = {"logits": 0, "y": 0, "subjects": 0, "sources": 0, "folds": 0, "pooled_temperature": 1.0}
    for name in ("collect_oof", "summarize_oof", "write_oof"):
        monkeypatch.setattr(crossval, name, lambda *a, **k: fake)
    monkeypatch.setattr(crossval, "format_oof", lambda summary: "")
    template = str(tmp_path / "t{test}.pt")
    result = CliRunner().invoke(main, ["cv", "--data", str(tree), "--out", str(tmp_path / "cv"), "--val-offset", "2",
                                       "--fold-teacher", template])
    assert result.exit_code == 0, result.output
    assert seen == [(i, (i + 2) % 4, [str(tmp_path / f"t{i}.pt")]) for i in range(4)]
    (tmp_path / "t2.pt").unlink()
    seen.clear()
    result = CliRunner().invoke(main, ["cv", "--data", str(tree), "--out", str(tmp_path / "cv"), "--fold-teacher",
                                       template])
    assert result.exit_code == 2 and "fold 2: teacher checkpoint(s) not found" in result.output
    assert seen == []  # found before fold 0 trains, not after hours of folds 0 and 1
    result = CliRunner().invoke(main, ["cv", "--data", str(tree), "--out", str(tmp_path / "cv"), "--val-offset", "4"])
    assert result.exit_code == 2 and "makes the validation fold the test fold" in result.output
