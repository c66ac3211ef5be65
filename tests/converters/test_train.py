"""Training on synthetic eyes: learns, checkpoints, resumes, and the ArcFace head never collapses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic import synthetic_eye

from eyesdk.converters.augment import AugmentConfig, augment
from eyesdk.converters.checkpoint import load_model, read_checkpoint, save_checkpoint
from eyesdk.converters.flops import count_macs
from eyesdk.converters.model import build_model, count_params
from eyesdk.converters.train import (
    TrainConfig,
    ema_of,
    lr_schedule,
    positive_weight,
    predict_logits,
    sampling_weights,
    train,
)
from eyesdk.metrics import balanced_accuracy, f1_score
from eyesdk.preprocess import resize_grey, standardize

SIZE = 32


def _data(n: int, seed: int, open_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < open_share).astype(np.int64)
    crops = np.stack([
        resize_grey(synthetic_eye(bool(label), int(rng.integers(24, 60)), rng), SIZE) for label in y])
    return crops, y  # resized grey in [0, 255], what the data loader hands to training


@pytest.fixture(scope="module")
def synthetic_split() -> dict[str, np.ndarray]:
    x, y = _data(600, seed=1)
    xv, yv = _data(200, seed=2)
    return {"x": x.astype(np.float32), "y": y, "xv": standardize(xv, 0.02), "yv": yv}


def _quick(**kw) -> TrainConfig:
    base = dict(widths=(4, 8, 16), epochs=3, samples_per_epoch=1024, batch_size=64, lr=5e-3, threads=1, patience=5,
                ema_decay=0.9)
    return TrainConfig(**{**base, **kw})


def test_trains_and_writes_checkpoints(synthetic_split, tmp_path) -> None:
    d = synthetic_split
    result = train(d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(), tmp_path, progress=False)
    pred = (predict_logits(result.model, d["xv"]) >= 0).astype(int)
    assert balanced_accuracy(d["yv"], pred) > 0.9
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    model, ckpt = load_model(tmp_path / "best.pt")
    assert ckpt["temperature"] == pytest.approx(result.temperature)
    assert ckpt["contract"]["size"] == SIZE
    np.testing.assert_allclose(predict_logits(model, d["xv"]), predict_logits(result.model, d["xv"]), atol=1e-5)


def test_resume_continues_from_last_epoch(synthetic_split, tmp_path) -> None:
    d = synthetic_split
    train(d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(epochs=2), tmp_path / "a", progress=False)
    state = read_checkpoint(tmp_path / "a" / "last.pt")
    assert state["epoch"] == 1
    # Same config, more epochs: refused (a different run); same config: picks up after the last finished epoch.
    with pytest.raises(ValueError, match="another training config"):
        train(d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(epochs=3), tmp_path / "a",
              progress=False)
    result = train(d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(epochs=2), tmp_path / "a",
                   progress=False)
    assert len(result.history) == 2  # nothing retrained: both epochs were already done


_KILLABLE = """
import sys, numpy as np
sys.path[:0] = [{here!r}, {tests!r}]
from test_train import _data, _quick
from eyesdk.converters.train import train
from eyesdk.preprocess import standardize
x, y = _data(600, seed=1); xv, yv = _data(200, seed=2)
train(x.astype(np.float32), y, ["mrl"] * len(y), standardize(xv, 0.02), yv, _quick(epochs=4), {out!r},
      progress=False)
"""


def test_sigkill_then_resume_matches_uninterrupted_run(synthetic_split, tmp_path) -> None:
    """A run killed with SIGKILL after its first checkpoint resumes and ends with the uninterrupted run's weights."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    d = synthetic_split
    args = (d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(epochs=4))
    full = train(*args, tmp_path / "full", progress=False)
    out = tmp_path / "killed"
    here = Path(__file__).parent
    code = _KILLABLE.format(here=str(here), tests=str(here.parent), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert (out / "last.pt").exists(), "the subprocess never wrote a checkpoint"
    killed_at = read_checkpoint(out / "last.pt")["epoch"]
    assert killed_at < 3, "the run finished before it could be killed"
    resumed = train(*args, out, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    a, b = read_checkpoint(tmp_path / "full" / "last.pt"), read_checkpoint(out / "last.pt")
    for key in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key])
    np.testing.assert_allclose(predict_logits(full.model, d["xv"]), predict_logits(resumed.model, d["xv"]), atol=1e-5)


def test_arcface_head_does_not_collapse(synthetic_split, tmp_path) -> None:
    """Regression for the original failure: margin-free scoring at validation, ~half predicted open, F1 high."""
    d = synthetic_split
    result = train(d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(head="arcface"), tmp_path,
                   progress=False)
    z = predict_logits(result.model, d["xv"])
    share_open = float((z >= 0).mean())
    assert 0.3 < share_open < 0.7, f"predictions collapsed: {share_open:.2%} open"
    assert f1_score(d["yv"], (z >= 0).astype(int)) > 0.85
    assert z.ndim == 1  # one logit, the same contract as the BCE head


def test_arcface_forward_equals_two_column_softmax() -> None:
    model = build_model("arcface", widths=(4, 8)).eval()
    x = torch.randn(5, 1, SIZE, SIZE)
    with torch.no_grad():
        cos = model.cosines(x) * model.scale
        np.testing.assert_allclose(torch.sigmoid(model(x)).view(-1), torch.softmax(cos, 1)[:, 1], atol=1e-6)


def test_model_budget_of_default_student() -> None:
    model = build_model()
    assert count_params(model) <= 50_000
    assert count_macs(model, SIZE) <= 1_500_000


def test_unknown_head_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown head 'triplet'"):
        build_model("triplet")


def test_positive_weight_follows_sampling() -> None:
    y = np.array([1, 1, 1, 0])
    assert positive_weight(y, sampling_weights(["a"] * 4, {})) == pytest.approx(1 / 3)
    assert positive_weight(y, sampling_weights(["a", "a", "a", "b"], {"b": 3.0})) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="needs both classes"):
        positive_weight(np.ones(3, int), np.full(3, 1 / 3))


def test_augment_is_seeded_and_stays_in_range() -> None:
    x = torch.rand(16, 1, SIZE, SIZE)
    a = augment(x, AugmentConfig(), torch.Generator().manual_seed(3))
    b = augment(x, AugmentConfig(), torch.Generator().manual_seed(3))
    c = augment(x, AugmentConfig(), torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_distillation_from_a_teacher_checkpoint(synthetic_split, tmp_path) -> None:
    d = synthetic_split
    args = (d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"])
    teacher = train(*args, _quick(widths=(8, 16, 32)), tmp_path / "teacher", progress=False)
    student = train(*args, _quick(teacher=str(teacher.checkpoint), distill_alpha=0.3), tmp_path / "student",
                    progress=False)
    pred = (predict_logits(student.model, d["xv"]) >= 0).astype(int)
    assert balanced_accuracy(d["yv"], pred) > 0.9
    assert read_checkpoint(student.checkpoint)["train_config"]["teacher"] == str(teacher.checkpoint)


def _recipe_lr(step: int, total: int, warmup: int, base: float) -> float:
    """The schedule as the model card states it: linear warm-up, then a cosine to zero."""
    import math

    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@pytest.mark.parametrize("warmup", [0, 1, 2, 37])
def test_lr_schedule_is_linear_warmup_then_cosine(warmup: int) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    schedule = lr_schedule(optimizer, 400, warmup)
    for step in range(400):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(_recipe_lr(step, 400, warmup, 3e-3), rel=1e-9,
                                                                abs=1e-15)
        optimizer.step()
        schedule.step()


def test_ema_copies_during_warmup_then_averages() -> None:
    model = build_model("bce", (4, 8))
    ema = ema_of(model, decay=0.9, warmup=2)
    weight = next(model.parameters())
    for _ in range(3):  # updates 0, 1, 2: copies
        with torch.no_grad():
            weight.add_(1.0)
        ema.update_parameters(model)
        torch.testing.assert_close(next(ema.module.parameters()), weight, rtol=0, atol=0)
    before = next(ema.module.parameters()).detach().clone()
    with torch.no_grad():
        weight.add_(1.0)
    ema.update_parameters(model)
    torch.testing.assert_close(next(ema.module.parameters()), 0.9 * before + 0.1 * weight.detach())
    counter = dict(ema.module.named_buffers())["features.0.1.num_batches_tracked"]
    assert counter.dtype == torch.int64


def test_resume_refuses_a_checkpoint_without_scheduler_state(synthetic_split, tmp_path) -> None:
    d = synthetic_split
    args = (d["x"], d["y"], ["mrl"] * len(d["y"]), d["xv"], d["yv"], _quick(epochs=2))
    train(*args, tmp_path, progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    del state["scheduler"]
    model, _ = load_model(tmp_path / "best.pt")
    meta = {k: v for k, v in state.items() if k not in ("config", "state_dict")}
    save_checkpoint(tmp_path / "last.pt", model, **meta)
    with pytest.raises(ValueError, match="older eyesdk"):
        train(*args, tmp_path, progress=False)
