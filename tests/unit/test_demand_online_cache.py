"""The demand scorer's cache of online reads: one read per expiry, a push clears it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from loopml.workloads.demand import online as online_reads
from loopml.workloads.demand.online import OnlineFeatures, StateRows
from loopml.workloads.demand.serving import OnlineCache


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """Every ``state_rows`` call, served without a store (slowly, to overlap)."""
    calls: list[list[tuple[str, str]]] = []

    def state_rows(self: OnlineFeatures, keys: list[tuple[str, str]]) -> StateRows:
        calls.append(list(keys))
        time.sleep(0.02)
        n = len(keys)
        return StateRows(
            np.full((n, 3), float(len(calls))), [86_400 * 10] * n, [1.0] * n, [None] * n
        )

    monkeypatch.setattr(OnlineFeatures, "state_rows", state_rows)
    return calls


def test_concurrent_misses_read_once_and_entries_expire(
    reads: list[list[tuple[str, str]]],
) -> None:
    cache = OnlineCache(store=object(), seconds=0.3)
    keys = [("S01", "I001"), ("S01", "I002")]
    got: list[float] = []

    def ask() -> None:
        got.append(float(cache.get(keys)[0].state[0]))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1 and got == [1.0] * 16
    assert cache.get(keys)[1].origin == 10  # days since 1970
    assert cache.get([("S01", "I003"), *keys]) and reads[-1] == [("S01", "I003")]
    time.sleep(0.35)
    assert cache.get(keys)[0].state[0] == 3.0 and len(reads) == 3


def test_a_push_empties_the_cache_and_zero_seconds_reads_every_time(
    reads: list[list[tuple[str, str]]],
) -> None:
    cache = OnlineCache(store=object(), seconds=60)
    keys = [("S01", "I001")]
    cache.get(keys)
    cache.get(keys)
    assert len(reads) == 1
    online_reads.PUSHES[0] += 1  # what push_sales does after a push
    cache.get(keys)
    assert len(reads) == 2
    uncached = OnlineCache(store=object(), seconds=0)
    uncached.get(keys)
    uncached.get(keys)
    assert len(reads) == 4


def test_holds_says_whether_get_would_read(
    reads: list[list[tuple[str, str]]],
) -> None:
    cache = OnlineCache(store=object(), seconds=0.3)
    keys = [("S01", "I001"), ("S01", "I002")]
    assert not cache.holds(keys)
    cache.get(keys[:1])
    assert cache.holds(keys[:1]) and not cache.holds(keys)
    cache.get(keys)
    assert cache.holds(keys) and len(reads) == 2
    online_reads.PUSHES[0] += 1  # a push: the next get reads again
    assert not cache.holds(keys)
    cache.get(keys)
    assert cache.holds(keys)
    time.sleep(0.35)  # expired
    assert not cache.holds(keys[:1])
    uncached = OnlineCache(store=object(), seconds=0)
    uncached.get(keys)
    assert not uncached.holds(keys)  # 0 seconds keeps nothing
