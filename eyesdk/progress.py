"""The one progress display of the command lines: a tqdm bar on stderr when tqdm is importable, else nothing or one
plain line per step. tqdm is optional (it comes with the ``train`` extra), so a runtime-only install still reports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Progress:
    """``with Progress(total, "decoding crops") as bar: bar.step("msg")``; ``enabled=False`` shows nothing.

    Without tqdm, ``plain_lines=True`` prints ``[desc] message`` per step (for long steps, e.g. a benchmark stage);
    otherwise the steps pass silently (for tight loops, e.g. training batches).
    """

    def __init__(self, total: int | None, desc: str, enabled: bool = True, unit: str = "it",
                 plain_lines: bool = False, leave: bool = False) -> None:
        self.desc = desc
        self._bar: Any = None
        self._lines = enabled and plain_lines
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._lines = False
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave, dynamic_ncols=True)

    def step(self, message: str | None = None, n: int = 1) -> None:
        if self._bar is not None:
            if message:
                self._bar.set_postfix_str(message[:60], refresh=False)
            self._bar.update(n)
        elif self._lines and message:
            print(f"[{self.desc}] {message}", file=sys.stderr, flush=True)

    def postfix(self, **values: Any) -> None:
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def track(iterable: Iterable[T], desc: str, enabled: bool = True, total: int | None = None,
          unit: str = "it") -> Iterator[T]:
    """Iterate with a bar (closed at the end, also on break or error)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, enabled, unit) as bar:
        for item in iterable:
            yield item
            bar.step()
