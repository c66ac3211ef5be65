"""Which subjects a bundle did NOT train on, read from its manifest, so "unseen" numbers are never about training
subjects.

A bundle's ``training`` block may record the folds file and the folds it trained on (``folds_file`` with
``train_folds``, optionally ``folds_sha256``), or only its validation / test folds (``val_fold``, ``test_fold``: every
other fold of the folds file was training). With a folds file recorded, the unseen subjects are derived from it; an
explicit ``--subjects-from FOLDS_JSON:FOLD`` must then name only folds the bundle did not train on. With only fold
numbers recorded, ``--subjects-from`` is required and its folds must be the recorded validation / test folds. With
nothing usable recorded, ``--subjects-from`` is required and the result is labelled as unverified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import parse_subjects_from, subjects_of_folds


class SeenSubjectsError(ValueError):
    """The requested subjects include ones the bundle trained on (or the manifest cannot tell and none were named)."""


@dataclass(frozen=True)
class Unseen:
    subjects: frozenset[str]
    folds_file: str
    folds: tuple[int, ...]
    verified: bool  # the manifest confirmed the bundle did not train on these folds
    how: str


def _training(manifest: dict[str, Any]) -> dict[str, Any]:
    training = manifest.get("training")
    return training if isinstance(training, dict) else {}


def _int_list(value: Any) -> list[int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    return None


def held_out_folds(manifest: dict[str, Any]) -> list[int] | None:
    """The folds the manifest says were NOT trained on (validation + test), or None when it does not say."""
    training = _training(manifest)
    folds = []
    for key in ("val_fold", "test_fold", "val_folds", "test_folds"):
        found = _int_list(training.get(key))
        if found:
            folds += found
    return sorted(set(folds)) or None


def unseen_subjects(manifest: dict[str, Any], subjects_from: str | None, root: Path = Path(".")) -> Unseen:
    training = _training(manifest)
    recorded = training.get("folds_file")
    train_folds = _int_list(training.get("train_folds"))
    held_out = held_out_folds(manifest)
    if subjects_from is not None:
        path, folds = parse_subjects_from(subjects_from)
    elif isinstance(recorded, str) and train_folds is not None:
        path = Path(recorded) if Path(recorded).is_absolute() else root / recorded
        from eyesdk.converters.splits import read_folds

        present = sorted(set(read_folds(path)["subjects"].values()))
        folds = [f for f in present if f not in train_folds]
    elif isinstance(recorded, str) and held_out:
        path = Path(recorded) if Path(recorded).is_absolute() else root / recorded
        folds = list(held_out)
    elif held_out:
        raise SeenSubjectsError(
            f"the bundle records held-out fold(s) {held_out} but not its folds file: pass --subjects-from "
            f"FOLDS_JSON:{','.join(map(str, held_out))} (the folds file it was trained with)"
        )
    else:
        raise SeenSubjectsError(
            "the bundle's manifest does not say which subjects it trained on: pass --subjects-from FOLDS_JSON:FOLD "
            "naming subjects it did not train on"
        )
    if train_folds is not None:
        trained = sorted(set(folds) & set(train_folds))
        if trained:
            raise SeenSubjectsError(f"the bundle trained on fold(s) {trained}; refusing to report them as unseen")
        verified, how = True, f"manifest train_folds {train_folds}"
    elif held_out is not None:
        trained = sorted(set(folds) - set(held_out))
        if trained:
            raise SeenSubjectsError(
                f"the bundle held out only fold(s) {held_out}, so it trained on fold(s) {trained}; refusing to report "
                "them as unseen"
            )
        verified, how = True, f"manifest held-out folds {held_out}"
    else:
        verified, how = False, "named by --subjects-from; the manifest cannot confirm them"
    return Unseen(frozenset(subjects_of_folds(path, folds)), str(path), tuple(folds), verified, how)
