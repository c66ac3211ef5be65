"""Columnar metadata of many samples: labels, and sources and subjects as codes into sorted name tables.

Folds, data summaries and sampling weights only need these three columns, and as numpy arrays they cost a few bytes
per crop, so the same code serves 45 k decoded images and a pack of tens of millions of crops. `Sample` objects (with
path and attributes) are made only for the rows that need them: the validation and test slices of a report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .datasets import Sample

#: Materialise the `Sample`s of the given row indices (ascending), in that order.
SampleReader = Callable[[np.ndarray], list[Sample]]


def _codes(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    names, codes = np.unique(np.asarray(list(values), dtype=str), return_inverse=True)
    return names, codes.astype(np.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class SampleTable:
    """One row per sample; `sources` and `subjects` are sorted, so codes order as the names do."""

    labels: np.ndarray  # (N,) uint8, 1 = open, 0 = closed
    source_codes: np.ndarray  # (N,) int64 into `sources`
    subject_codes: np.ndarray  # (N,) int64 into `subjects`
    sources: np.ndarray  # (S,) str, sorted
    subjects: np.ndarray  # (U,) str, sorted
    read_samples: SampleReader

    @classmethod
    def from_samples(cls, samples: Sequence[Sample]) -> SampleTable:
        kept = list(samples)
        sources, source_codes = _codes(s.source for s in kept)
        subjects, subject_codes = _codes(s.subject for s in kept)
        labels = np.fromiter((s.label for s in kept), dtype=np.uint8, count=len(kept))
        return cls(labels, source_codes, subject_codes, sources, subjects, lambda rows: [kept[i] for i in rows])

    def __len__(self) -> int:
        return len(self.labels)

    def samples(self, mask: np.ndarray | None = None) -> list[Sample]:
        """The `Sample`s of the rows where `mask` is true (all rows without one), in row order."""
        rows = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
        return self.read_samples(rows)

    def source_names(self) -> np.ndarray:
        """The source of every row, (N,) str."""
        return self.sources[self.source_codes]

    def subject_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """(open, closed) image counts per subject code."""
        n_open = np.bincount(self.subject_codes, weights=self.labels == 1, minlength=len(self.subjects))
        total = np.bincount(self.subject_codes, minlength=len(self.subjects))
        return n_open.astype(np.int64), (total - n_open).astype(np.int64)


def as_table(samples: Sequence[Sample] | SampleTable) -> SampleTable:
    return samples if isinstance(samples, SampleTable) else SampleTable.from_samples(samples)


def summarize_table(table: SampleTable) -> dict[str, Any]:
    """Counts for the model card: images and classes per source, subjects, subjects holding only one class."""

    def counts(rows: np.ndarray) -> dict[str, Any]:
        subjects = table.subject_codes[rows]
        n_open = np.bincount(subjects, weights=table.labels[rows] == 1, minlength=len(table.subjects))
        total = np.bincount(subjects, minlength=len(table.subjects))
        present = total > 0
        sizes = np.sort(total[present])
        return {
            "images": int(len(rows)),
            "open": int(n_open.sum()),
            "closed": int(len(rows) - n_open.sum()),
            "subjects": int(present.sum()),
            "subjects_open_only": int(np.sum(present & (n_open == total))),
            "subjects_closed_only": int(np.sum(present & (n_open == 0))),
            "images_per_subject": {
                "min": int(sizes[0]) if len(sizes) else 0,
                "median": int(sizes[len(sizes) // 2]) if len(sizes) else 0,
                "max": int(sizes[-1]) if len(sizes) else 0,
            },
        }

    every = np.arange(len(table))
    by_source = {str(name): counts(np.flatnonzero(table.source_codes == code))
                 for code, name in enumerate(table.sources) if np.any(table.source_codes == code)}
    return {**counts(every), "sources": by_source}
