"""What a benchmark measures: the bundle's artifacts in the format table's order, narrowed to what was asked for.

Every subcommand of ``eyesdk-bench`` walks this one list, so "all artifacts" means the same thing in the matrix run,
``throughput``, ``peer-latency --all`` and ``soak``, and a new format or precision is measured as soon as the
exporter ships it, without a hand-written list anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eyesdk import backends
from eyesdk.bundle import Bundle
from eyesdk.formats import FORMATS, PRECISIONS, Format


@dataclass(frozen=True)
class Cell:
    """One artifact of a bundle: the format that holds it, its precision and its manifest entry."""

    format: Format
    precision: str
    artifact: dict[str, Any]

    @property
    def backend(self) -> str:
        return self.format.backend

    @property
    def key(self) -> str:
        return f"{self.backend} {self.precision}"


def cells(bundle: Bundle, backends_wanted: Sequence[str] | None = None,
          precisions_wanted: Sequence[str] | None = None) -> list[Cell]:
    """Format table order x precision order, restricted to what the bundle ships and what was asked for."""
    found = []
    for fmt in FORMATS.values():
        if backends_wanted and fmt.backend not in backends_wanted:
            continue
        for precision in PRECISIONS:
            if precisions_wanted and precision not in precisions_wanted:
                continue
            artifact = bundle.artifact(fmt.name, precision)
            if artifact is not None:
                found.append(Cell(fmt, precision, artifact))
    return found


def installed_cells(bundle: Bundle, backends_wanted: Sequence[str] | None = None,
                    precisions_wanted: Sequence[str] | None = None) -> list[Cell]:
    """:func:`cells` whose backend is installed here (what a subcommand without a "not installed" column can run)."""
    return [c for c in cells(bundle, backends_wanted, precisions_wanted) if backends.is_available(c.backend)]
