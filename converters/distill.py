"""Teachers for knowledge distillation: one checkpoint or an ensemble of several, averaged in logit space.

Distillation here is "consistent" in the sense of Beyer et al. (CVPR 2022, "Knowledge distillation: a good teacher
is patient and consistent"): the teacher scores the very augmented batch the student sees, online, every step - no
cached teacher logits - so the student learns the teacher's function on the whole augmented distribution, not on a
fixed set of points. An ensemble of models trained on different folds is a better teacher than any one of them, but
it must never have seen the subjects the student is tested on: pass only teachers trained without the test fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn


class TeacherEnsemble(nn.Module):
    """Mean logit of its members (each maps (N, 1, S, S) -> (N, 1)); frozen, always in eval mode."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("a teacher ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> TeacherEnsemble:  # a teacher never leaves eval mode (BatchNorm, dropout)
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def teacher_paths(teacher: str | Sequence[str] | None) -> list[str]:
    """``"a.pt"``, ``"a.pt,b.pt"`` or ``["a.pt", "b.pt"]`` -> a list of checkpoint paths (the CLIs' one comma rule)."""
    from eyesdk.cliutil import split_commas

    return split_commas(teacher if teacher is None or isinstance(teacher, str) else [str(t) for t in teacher])


def load_teacher(teacher: str | Sequence[str]) -> TeacherEnsemble:
    """Load one teacher checkpoint or several (mean logit); raises FileNotFoundError naming a missing one."""
    from .checkpoint import load_model

    paths = teacher_paths(teacher)
    if not paths:
        raise ValueError(f"no teacher checkpoint given in {teacher!r}")
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"teacher checkpoint(s) not found: {', '.join(missing)}")
    return TeacherEnsemble([load_model(p)[0] for p in paths])
