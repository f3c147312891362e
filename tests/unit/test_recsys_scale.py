"""The recsys generator at scale: small worlds unchanged, big ones by group.

The fingerprints were taken from the generator before it learnt to scale
(dense employee x course arrays): every size the tests, the default and the
production profiles use must still give those exact tables.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.workloads.recsys import generator
from loopml.workloads.recsys.generator import generate
from loopml.workloads.recsys.grouped import TakenPairs

SIZES: dict[str, dict[str, Any]] = {
    "default": {},
    "production": {"n_users": 2000, "n_items": 300},
    "ranker": {"n_users": 300, "n_items": 60, "n_days": 180, "seed": 1},
    "tiny_env": {"n_users": 150, "n_items": 40, "n_days": 120},
    "replay": {"n_users": 150, "n_items": 40, "n_days": 120, "extra_days": 7}
    | {"drift_from_day": 118},
    "models": {"n_users": 60, "n_items": 20, "n_days": 80, "seed": 5},
    "drift": {"n_users": 80, "n_items": 30, "n_days": 90, "seed": 3}
    | {"drift_from_day": 60},
    "extra": {"n_users": 80, "n_items": 30, "n_days": 90, "seed": 3, "extra_days": 5},
    "wide": {"n_users": 200, "n_items": 300, "n_days": 120},
    "threshold": {"n_users": 3000, "n_items": 1000, "n_days": 100, "seed": 9},
}
FINGERPRINTS = {
    "default": "884a5b4ae9a4cfe8",  # pragma: allowlist secret
    "production": "b30680a48a8119cf",  # pragma: allowlist secret
    "ranker": "3a4b77e03b7f4fb0",  # pragma: allowlist secret
    "tiny_env": "5e0f0b40a11fc9ea",  # pragma: allowlist secret
    "replay": "d692919aecfe414a",  # pragma: allowlist secret
    "models": "e382679106789e08",  # pragma: allowlist secret
    "drift": "6c718cb881dcb7ba",  # pragma: allowlist secret
    "extra": "a05773008bb17db5",  # pragma: allowlist secret
    "wide": "3a9da18ffac3f23a",  # pragma: allowlist secret
    "threshold": "6f100b8131805081",  # pragma: allowlist secret
}


def fingerprint(frames: list[pd.DataFrame]) -> str:
    """A hash of the frames' columns, dtypes, index and values."""
    digest = hashlib.sha256()
    for frame in frames:
        columns = zip(frame.columns, map(str, frame.dtypes), strict=True)
        digest.update(repr(list(columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(SIZES))
def test_small_worlds_are_byte_for_byte_what_they_were(name: str) -> None:
    data = generate(**SIZES[name])
    got = fingerprint([data.users, data.items, data.interactions])
    assert got == FINGERPRINTS[name]


def _summary(data: Any) -> dict[str, Any]:
    enrol = data.interactions[data.interactions["event"] == "enrol"]
    joined = enrol.merge(data.users[["user_id", "segment"]]).merge(
        data.items[["item_id", "category"]]
    )
    favourite = joined.groupby("segment")["category"].agg(
        lambda v: v.value_counts().index[0]
    )
    return {"enrolments": len(enrol), "favourite": favourite.to_dict()}


def test_the_grouped_simulation_draws_from_the_same_world(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = {"n_users": 3000, "n_items": 1000, "n_days": 100, "seed": 9}
    exact = generate(**size)
    monkeypatch.setattr(generator, "DENSE_MAX_CELLS", 0)
    grouped = generate(**size)
    # Other random draws, same choice model: same volume, same tastes.
    assert not grouped.interactions.equals(exact.interactions)
    want, got = _summary(exact), _summary(grouped)
    assert abs(got["enrolments"] / want["enrolments"] - 1) < 0.05
    assert got["favourite"] == want["favourite"]
    pd.testing.assert_frame_equal(grouped.users, exact.users)
    enrol = grouped.interactions[grouped.interactions["event"] == "enrol"]
    assert not enrol.duplicated(["user_id", "item_id"]).any()
    at = enrol.merge(grouped.items[["item_id", "created"]]).merge(
        grouped.users[["user_id", "hire_date"]]
    )
    assert (at["timestamp"] >= at["created"].dt.normalize()).all()
    assert (at["timestamp"] >= at["hire_date"].dt.normalize()).all()
    again = generate(**size)
    pd.testing.assert_frame_equal(again.interactions, grouped.interactions)


def _top_fifth_share(data: Any) -> float:
    enrol = data.interactions[data.interactions["event"] == "enrol"]
    counts = enrol["item_id"].value_counts().to_numpy()
    return float(counts[: len(data.items) // 5].sum() / counts.sum())


def test_popularity_tail_makes_a_long_tail_and_zero_changes_nothing() -> None:
    size = {"n_users": 400, "n_items": 200, "n_days": 120, "seed": 2}
    plain = generate(**size)
    pd.testing.assert_frame_equal(
        generate(**size, popularity_tail=0.0).interactions, plain.interactions
    )
    tailed = generate(**size, popularity_tail=1.0)
    assert _top_fifth_share(tailed) > _top_fifth_share(plain) + 0.2
    pd.testing.assert_frame_equal(tailed.users, plain.users)


def test_taken_pairs_finds_what_it_holds() -> None:
    taken = TakenPairs(n_items=10)
    assert not taken.contains(np.array([0]), np.array([0])).any()
    taken.add(np.array([3, 1, 3]), np.array([2, 9, 7]))
    taken.add(np.array([0]), np.array([4]))
    hit = taken.contains(np.array([3, 3, 1, 0, 2]), np.array([2, 7, 9, 4, 2]))
    assert hit.tolist() == [True, True, True, True, False]
    row, item = taken.of(np.array([1, 2, 3]))
    assert row.tolist() == [0, 2, 2]
    assert item.tolist() == [9, 2, 7]
