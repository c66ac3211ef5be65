"""Real crops played along a scripted timeline, so a stream sees something that looks like video of one person.

MRL image ids within a subject are consecutive video frames, ordered closed first, then open: there are no blinks
inside the id order. So each subject's open crops and closed crops are kept as two runs in id order, and every frame
takes the next crop of the run its ground-truth state asks for, walking back and forth along the run (neighbours stay
neighbours, as in video). MRL does not say which eye a crop shows, so the two eyes read interleaved crops of the same
run (left the even positions, right the odd ones): at every frame the eyes are near neighbours in the video, as a
person's two eyes share gaze, lighting and look at any moment. That is the pessimistic choice for the two-eye fusion:
when one eye's crop is hard, the other's usually is too.
Crops are decoded once per subject and kept as uint8 arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class SubjectCrops:
    subject: str
    open: list[np.ndarray]
    closed: list[np.ndarray]
    attrs: dict[str, str]

    @property
    def usable(self) -> bool:
        return len(self.open) >= 2 and len(self.closed) >= 2


def load_subjects(mrl_root: Path, subjects: Sequence[str] | None = None) -> list[SubjectCrops]:
    """Decode each subject's crops (id order) from an MRL folder; ``subjects`` are keys like ``mrl:s0002``."""
    from eyesdk.converters.datasets import read_mrl
    from eyesdk.imagefile import read_image

    by_subject: dict[str, list] = {}
    for sample in read_mrl(mrl_root):
        if subjects is None or sample.subject in subjects:
            by_subject.setdefault(sample.subject, []).append(sample)
    out = []
    for subject in sorted(by_subject):
        samples = sorted(by_subject[subject], key=lambda s: int(s.attrs["image_id"]))
        runs: dict[int, list[np.ndarray]] = {0: [], 1: []}
        for s in samples:
            runs[s.label].append(read_image(s.path))
        attrs = {k: v for k, v in samples[0].attrs.items() if k != "image_id"}
        out.append(SubjectCrops(subject, runs[1], runs[0], attrs))
    return out


class Walker:
    """Back-and-forth along one run: 0, 1, ..., n-1, n-2, ..., 0, 1, ..."""

    def __init__(self, n: int, start: int = 0) -> None:
        self.n, self.period = n, max(1, 2 * (n - 1))
        self.i = start % self.period

    def next(self) -> int:
        i = self.i
        self.i = (self.i + 1) % self.period
        return i if i < self.n else self.period - i


def play_indices(crops: SubjectCrops, closed: np.ndarray) -> Iterator[tuple[bool, int, int]]:
    """Per frame: (closed?, left index, right index) into that state's run (left even, right odd positions)."""
    walkers = {True: Walker(max(1, len(crops.closed) // 2)), False: Walker(max(1, len(crops.open) // 2))}
    for is_closed in closed:
        k = walkers[bool(is_closed)].next()
        yield bool(is_closed), 2 * k, 2 * k + 1


def play(crops: SubjectCrops, closed: np.ndarray, pair: bool = True) -> Iterator[object]:
    """Frames for a stream without a locator: per frame a (left, right) pair (or one crop) in its state's run."""
    for is_closed, i, j in play_indices(crops, closed):
        run = crops.closed if is_closed else crops.open
        yield (run[i], run[j]) if pair else run[i]
