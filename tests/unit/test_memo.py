"""core.memo: values made once, None passed through, kept only when allowed."""

from __future__ import annotations

import pytest

from loopml.core import memo


def test_made_once_then_found_and_none_passes_through() -> None:
    calls: list[int] = []

    def make(v: int) -> str:
        calls.append(v)
        return f"<{v}>"

    known: dict[int, str] = {}
    assert memo.memoised([1, None, 2, 1], known, make) == ["<1>", None, "<2>", "<1>"]
    assert memo.memoised([2, 1], known, make) == ["<2>", "<1>"]
    assert calls == [1, 2, 1]  # the first call made 1 twice; the second none
    assert known == {1: "<1>", 2: "<2>"}


def test_values_keep_refuses_are_made_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known: dict[int, int] = {}
    odd = memo.memoised([1, 2, 3], known, lambda v: v * 10, keep=lambda v: v % 2 == 1)
    assert odd == [10, 20, 30] and known == {1: 10, 3: 30}
    monkeypatch.setattr(memo, "MEMO_SIZE", 1)
    memo.memoised([5], known, lambda v: v)  # past the size: starts again
    assert known == {5: 5}
