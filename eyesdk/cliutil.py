"""Option parsers shared by the three command lines (``eyesdk``, ``eyesdk-convert``, ``eyesdk-bench``).

One definition of "a comma list": values may be repeated or comma-joined (``--backends onnxruntime,tflite`` or
``--backends onnxruntime --backends tflite``), blanks are ignored, duplicates keep their first place, and a bad item
is a click usage error naming what is allowed. click is a base dependency, so every installed command can parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

Callback = Callable[[click.Context, click.Parameter, Any], Any]


def split_commas(values: str | Iterable[str] | None) -> list[str]:
    """``"a, b" / ("a,b", "c")`` -> ``["a", "b", "c"]``: stripped, blanks dropped, first occurrence kept."""
    if values is None:
        return []
    if isinstance(values, str):
        values = (values,)
    return list(dict.fromkeys(v.strip() for value in values for v in value.split(",") if v.strip()))


def comma_choices(allowed: Sequence[str], what: str = "value", all_word: str | None = None) -> Callback:
    """Callback for a comma list of names from ``allowed``; ``None`` when nothing (or ``all_word``) was given."""

    def parse(_ctx: click.Context, _param: click.Parameter, values: Any) -> tuple[str, ...] | None:
        items = split_commas(values)
        if not items or (all_word is not None and items == [all_word]):
            return None
        unknown = [v for v in items if v not in allowed]
        if unknown:
            choices = ", ".join(allowed) + (f" or {all_word!r}" if all_word else "")
            raise click.BadParameter(f"unknown {what} {', '.join(unknown)}; choose from {choices}")
        return tuple(items)

    return parse


def comma_ints(minimum: int | None = None, what: str = "integers") -> Callback:
    """Callback for a comma list of integers (each >= ``minimum`` when given); an empty list is an error."""

    def parse(_ctx: click.Context, _param: click.Parameter, values: Any) -> tuple[int, ...]:
        items = split_commas(values)
        try:
            numbers = tuple(dict.fromkeys(int(v) for v in items))
        except ValueError:
            raise click.BadParameter(f"{values!r} is not a comma list of {what}, e.g. 1,2") from None
        if not numbers:
            raise click.BadParameter(f"{values!r}: expected at least one of the {what}")
        if minimum is not None and min(numbers) < minimum:
            raise click.BadParameter(f"{values!r}: {what} must be integers >= {minimum}")
        return numbers

    return parse
