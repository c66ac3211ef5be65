"""Teacher ensembles: mean logit, frozen, eval mode, clear errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from eyesdk.converters.checkpoint import save_checkpoint  # noqa: E402
from eyesdk.converters.distill import TeacherEnsemble, load_teacher, teacher_paths  # noqa: E402
from eyesdk.converters.model import build_model  # noqa: E402


def test_ensemble_is_the_mean_logit_and_stays_frozen(tmp_path) -> None:
    torch.manual_seed(0)
    a, b = build_model(widths=(4, 8)).eval(), build_model(widths=(4, 8)).eval()
    paths = [save_checkpoint(tmp_path / n, m) for n, m in (("a.pt", a), ("b.pt", b))]
    teacher = load_teacher(f"{paths[0]},{paths[1]}")
    teacher.train()  # must not switch BatchNorm / dropout to training behaviour
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(5, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(teacher(x), (a(x) + b(x)) / 2, atol=1e-6)
    assert len(load_teacher([str(paths[0])]).members) == 1


def test_teacher_errors(tmp_path) -> None:
    assert teacher_paths(None) == [] and teacher_paths(" a.pt, ,b.pt") == ["a.pt", "b.pt"]
    with pytest.raises(FileNotFoundError, match="teacher checkpoint\\(s\\) not found: .*missing.pt"):
        load_teacher(str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="no teacher checkpoint given"):
        load_teacher(" , ")
    with pytest.raises(ValueError, match="needs at least one member"):
        TeacherEnsemble([])
