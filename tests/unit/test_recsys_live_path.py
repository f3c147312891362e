"""The frame-free live path of one user equals ``recommend_frame``, row for row.

Ranks, items and reasons are equal; scores to float32 rounding, since the batch
path multiplies a group of users at once and BLAS sums such a product in
another order than one user's (a last-bit difference, seen for ALS).

Every user of a small generated data set (known users, with the items they
took after the fit filtered out), each model, several k, the user's own
segment and another one, and new users of each segment.
"""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from loopml.workloads.recsys.data import RecsysData, generate
from loopml.workloads.recsys.evaluate import time_split
from loopml.workloads.recsys.models import MODELS
from loopml.workloads.recsys.pyfunc import RecsysModel


@pytest.fixture(scope="module")
def split() -> tuple[RecsysData, pd.DataFrame]:
    data = generate(n_users=300, n_items=60, n_days=180, seed=3)
    train, test = time_split(data.interactions, test_days=28)
    return data.with_interactions(train), test


def _frame_rows(
    model: RecsysModel, users: list[str], k: int, segment: str | None
) -> dict[str, list[tuple[int, str, float, str]]]:
    """``recommend_frame`` (the batch path) for ``users``, as rows per user."""
    frame = model.recommend_frame(users, k, segment)
    rows: dict[str, list[tuple[int, str, float, str]]] = {u: [] for u in users}
    columns = ["user_id", "rank", "item_id", "score", "reason"]
    for u, r, i, s, w in frame[columns].itertuples(index=False):
        rows[str(u)].append((int(r), str(i), float(s), str(w)))
    return rows


def _assert_same_rows(
    got: list[tuple[int, str, float, str]], expected: list[tuple[int, str, float, str]]
) -> None:
    """Equal ranks, items and reasons; scores equal to float32 rounding."""
    assert [(r, i, w) for r, i, _, w in got] == [(r, i, w) for r, i, _, w in expected]
    assert [s for _, _, s, _ in got] == pytest.approx(
        [s for _, _, s, _ in expected], rel=1e-6, abs=1e-9
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_one_equals_recommend_frame(
    name: str, split: tuple[RecsysData, pd.DataFrame]
) -> None:
    train, test = split
    # The items users took after the fit: never recommended (``recent``).
    model = RecsysModel(MODELS[name]().fit(train), train, k=10, recent=test)
    assert model._recent_max > 0
    segments = sorted(model.segments)
    # Every user, with k and a segment override varying by user; the batch
    # path scores each (k, segment) group of users in one call.
    asked: dict[tuple[int, str | None], list[str]] = {}
    for n, user in enumerate(model.user_ids()):
        k = (5, 10, 20)[n % 3]
        segment = None if n % 4 else segments[n % len(segments)]
        asked.setdefault((k, segment), []).append(user)
    checked = reasons = 0
    for (k, segment), users in asked.items():
        for user, expected in _frame_rows(model, users, k, segment).items():
            _assert_same_rows(model.recommend_one(user, k, segment), expected)
            checked += 1
            reasons += sum(r.startswith("because you took") for *_, r in expected)
    for segment in segments:  # new users get the segment's popular items
        expected = _frame_rows(model, ["new-user"], 10, segment)["new-user"]
        assert expected and model.recommend_one("new-user", 10, segment) == expected
    assert checked == 300 and reasons > 0  # not vacuous: history reasons occur


def test_lookups_are_not_pickled(split: tuple[RecsysData, pd.DataFrame]) -> None:
    train, test = split
    model = RecsysModel(MODELS["segment_popularity"]().fit(train), train, recent=test)
    user = model.user_ids()[0]
    first = model.recommend_one(user, 10)
    copy = pickle.loads(pickle.dumps(model))
    assert "_lookups" not in copy.__dict__
    assert copy.recommend_one(user, 10) == first
