"""Which folds of the project's folds file the shipped bundle trained on and held out, from its manifest."""

from __future__ import annotations


def shipped_folds() -> tuple[int, int]:
    """(a fold the shipped bundle trained on, one it held out), from its manifest, so the fixture follows the bundle."""
    from eyesdk.benchmarks.stream.subjects import held_out_folds
    from eyesdk.bundle import load_default_bundle

    manifest = load_default_bundle().manifest
    held = held_out_folds(manifest)
    if held:
        return next(f for f in range(10) if f not in held), held[0]
    trained = manifest["training"]["train_folds"]
    return trained[0], next(f for f in range(10) if f not in trained)
