"""Which crops a training epoch draws, and how often: source weights times attribute-cell weights.

Training draws crops with replacement from a per-crop distribution. A source weight makes a small dataset count more
(CEW, the only visible-light set, is drawn 4x its share); a cell weight makes a rare, hard combination of attributes
count more, e.g. MRL's open eyes behind glasses with big reflections, where unseen subjects fail. A cell is written
``"glasses=yes,reflections=big,label=open"``: every ``key=value`` must match the crop's attributes (the MRL file-name
fields, plus ``source`` and ``label`` = open / closed); a crop in several cells gets the product of their weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

LABEL_NAMES = {1: "open", 0: "closed"}


def parse_cell(cell: str) -> dict[str, str]:
    """``"glasses=yes,label=open"`` -> {"glasses": "yes", "label": "open"}; raises ValueError on a malformed cell."""
    parts = [p.strip() for p in cell.split(",") if p.strip()]
    if not parts or any(p.count("=") != 1 or not p.split("=")[0].strip() or not p.split("=")[1].strip()
                        for p in parts):
        raise ValueError(f"bad sampling cell {cell!r}; expected key=value pairs joined by commas, "
                         "e.g. 'glasses=yes,reflections=big,label=open'")
    return {k.strip(): v.strip() for k, v in (p.split("=") for p in parts)}


def sampling_weights(
    sources: Sequence[str],
    source_weights: Mapping[str, float],
    attrs: Sequence[Mapping[str, str]] | None = None,
    cell_weights: Mapping[str, float] | None = None,
    y: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """Per-crop draw probabilities (sum 1): each crop's source weight times the weights of the cells it falls in.

    ``attrs`` (one mapping per crop) and ``y`` (0/1 labels) are needed only when ``cell_weights`` are given.
    """
    w = np.array([source_weights.get(s, 1.0) for s in sources], dtype=np.float64)
    if cell_weights:
        n = len(sources)
        if attrs is None or y is None or len(attrs) != n or len(y) != n:
            raise ValueError(f"cell weights need the attributes and label of every crop ({n} crops; got "
                             f"{'no' if attrs is None else len(attrs)} attrs, {'no' if y is None else len(y)} labels)")
        for cell, weight in cell_weights.items():
            if not (isinstance(weight, (int, float)) and weight > 0):
                raise ValueError(f"sampling cell {cell!r} has weight {weight!r}; weights must be numbers > 0")
            wanted = parse_cell(cell)
            hit = np.array([all(_value(key, a, s, int(label)) == v for key, v in wanted.items())
                            for a, s, label in zip(attrs, sources, y, strict=True)], dtype=bool)
            w[hit] *= weight
    if not w.sum() > 0:
        raise ValueError("every crop has draw weight 0; check the source weights")
    return w / w.sum()


def _value(key: str, attrs: Mapping[str, str], source: str, label: int) -> str | None:
    if key == "label":
        return LABEL_NAMES[label]
    if key == "source":
        return source
    return attrs.get(key)
