"""Unseen subjects come from the bundle's manifest; subjects it trained on are never reported as unseen."""

from __future__ import annotations

import pytest

from eyesdk.benchmarks.stream.subjects import SeenSubjectsError, held_out_folds, unseen_subjects


def test_recorded_folds_file_and_train_folds(tiny_mrl) -> None:
    _, folds, trained, held = tiny_mrl
    manifest = {"training": {"folds_file": str(folds), "train_folds": [trained]}}
    chosen = unseen_subjects(manifest, None)
    assert chosen.subjects == {"mrl:s0002", "mrl:s0003"} and chosen.verified and chosen.folds == (held,)
    with pytest.raises(SeenSubjectsError, match=rf"the bundle trained on fold\(s\) \[{trained}\]; refusing"):
        unseen_subjects(manifest, f"{folds}:{trained}")


def test_only_held_out_fold_numbers_recorded(tiny_mrl) -> None:
    _, folds, trained, held = tiny_mrl
    manifest = {"training": {"val_fold": held, "test_fold": None}}  # what the shipped bundle records
    assert held_out_folds(manifest) == [held]
    with pytest.raises(SeenSubjectsError, match=rf"records held-out fold\(s\) \[{held}\] but not its folds file: "
                                                rf"pass --subjects-from FOLDS_JSON:{held}"):
        unseen_subjects(manifest, None)
    chosen = unseen_subjects(manifest, f"{folds}:{held}")
    assert chosen.subjects == {"mrl:s0002", "mrl:s0003"} and chosen.verified
    with pytest.raises(SeenSubjectsError, match=rf"so it trained on fold\(s\) \[{trained}\]; refusing to report"):
        unseen_subjects(manifest, f"{folds}:{min(trained, held)},{max(trained, held)}")


def test_recorded_folds_file_and_held_out_folds(tiny_mrl) -> None:
    """A checkpoint trained with a test fold records its folds file and val / test folds, not its train folds."""
    _, folds, trained, held = tiny_mrl
    manifest = {"training": {"folds_file": str(folds), "val_fold": held, "test_fold": None}}
    chosen = unseen_subjects(manifest, None)
    assert chosen.subjects == {"mrl:s0002", "mrl:s0003"} and chosen.verified and chosen.folds == (held,)
    with pytest.raises(SeenSubjectsError, match=rf"so it trained on fold\(s\) \[{trained}\]; refusing to report"):
        unseen_subjects(manifest, f"{folds}:{trained}")


def test_nothing_recorded_needs_an_explicit_choice(tiny_mrl) -> None:
    _, folds, _, held = tiny_mrl
    with pytest.raises(SeenSubjectsError, match=r"does not say which subjects it trained on"):
        unseen_subjects({}, None)
    chosen = unseen_subjects({"training": "?"}, f"{folds}:{held}")
    assert not chosen.verified and "cannot confirm" in chosen.how


def test_the_shipped_bundle_says_what_it_held_out() -> None:
    from eyesdk.bundle import load_default_bundle

    training = load_default_bundle().manifest.get("training", {})
    assert held_out_folds(load_default_bundle().manifest) or ("folds_file" in training and "train_folds" in training)
