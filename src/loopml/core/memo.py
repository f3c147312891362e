"""A memo for values a service works out again and again (dates, day numbers)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: A memo past this many values starts again.
MEMO_SIZE = 100_000


def memoised(
    values: Sequence[K | None],
    known: dict[K, V],
    make: Callable[[K], V],
    keep: Callable[[K], bool] | None = None,
) -> list[V | None]:
    """``[None if v is None else make(v) for v in values]``, from ``known`` when
    made before: one dictionary lookup per value when every value is known.

    ``keep(value)`` says whether a made value may be kept (default: all);
    ``known`` is emptied when it passes :data:`MEMO_SIZE`. ``make`` must not
    return None.
    """
    found: list[V | None] = [None if v is None else known.get(v) for v in values]
    if None not in found:
        return found
    if len(known) > MEMO_SIZE:
        known.clear()
    for i, value in enumerate(values):
        if value is None or found[i] is not None:
            continue
        made = found[i] = make(value)
        if keep is None or keep(value):
            known[value] = made
    return found
