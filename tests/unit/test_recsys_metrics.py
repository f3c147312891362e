"""Recsys evaluation: known answers for metrics@k, both splits and slices."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.workloads.recsys.data import generate
from loopml.workloads.recsys.evaluate import (
    LOLO_PREFIX,
    catalogue_coverage,
    evaluate_protocols,
    evaluate_recommender,
    leave_last_out_split,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    slice_name,
    time_split,
)
from loopml.workloads.recsys.models import SegmentPopularity
from loopml.workloads.recsys.tables import RecsysData

RECOMMENDED = [["a", "b", "c", "d"], ["x", "y", "z", "w"], ["p", "q", "r", "s"]]
# The third user has nothing relevant, so only the first two are averaged.
RELEVANT = [{"a", "c", "e"}, {"w"}, set()]


def test_precision_at_k_known_answer() -> None:
    # user 1: a, c in top 3 -> 2/3; user 2: nothing in top 3 -> 0.
    assert precision_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((2 / 3) / 2)


def test_recall_at_k_known_answer() -> None:
    # user 1: 2 of 3 relevant; user 2: w at rank 4 -> 1 of 1 at k=4.
    assert recall_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((2 / 3) / 2)
    assert recall_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx((2 / 3 + 1) / 2)


def test_ndcg_at_k_known_answer() -> None:
    dcg = 1 + 1 / math.log2(4)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(dcg / ideal / 2)
    # A perfect ranking scores 1, however many relevant items remain.
    assert ndcg_at_k([["a", "c"]], [{"a", "c", "e"}], 2) == pytest.approx(1.0)


def test_map_at_k_known_answer() -> None:
    # user 1: precisions 1/1 at rank 1 and 2/3 at rank 3, over min(3, 3).
    user1 = (1 + 2 / 3) / 3
    # user 2: precision 1/4 at rank 4, over min(1, 4).
    assert map_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(user1 / 2)
    assert map_at_k(RECOMMENDED, RELEVANT, 4) == pytest.approx((user1 + 1 / 4) / 2)


def test_short_lists_and_no_users() -> None:
    assert precision_at_k([["a"]], [{"a"}], 5) == pytest.approx(0.2)
    assert ndcg_at_k([["a"]], [set()], 5) == 0.0


def test_catalogue_coverage() -> None:
    assert catalogue_coverage([["a", "b"], ["b", "c"]], 6) == pytest.approx(0.5)
    assert catalogue_coverage([], 0) == 0.0


@given(
    st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
    st.sets(st.sampled_from("abcdefgh"), min_size=1),
    st.integers(1, 10),
)
def test_metrics_are_bounded(recs: list[str], truth: set[str], k: int) -> None:
    for metric in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k):
        assert 0.0 <= metric([recs], [truth], k) <= 1.0 + 1e-12
    ideal = sorted(truth) + [i for i in recs if i not in truth]
    assert ndcg_at_k([ideal], [truth], k) == pytest.approx(1.0)


def _interactions() -> pd.DataFrame:
    rows = [
        ("u1", "a", "2025-01-01 09:00"),
        ("u1", "b", "2025-01-02 09:00"),
        ("u2", "a", "2025-01-02 10:00"),
        ("u2", "c", "2025-01-03 11:00"),
        ("u3", "a", "2025-01-03 12:00"),
        ("u1", "c", "2025-01-08 09:00"),
        ("u1", "a", "2025-01-09 09:00"),
        ("u2", "b", "2025-01-09 10:00"),
        ("u4", "a", "2025-01-10 23:59"),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[ns]")
    return frame.assign(event="enrol", weight=1.0)


def test_time_split_is_strict_and_keeps_cold_users() -> None:
    train, test = time_split(_interactions(), test_days=3)
    assert train["timestamp"].max() < pd.Timestamp("2025-01-08")
    assert test["timestamp"].min() >= pd.Timestamp("2025-01-08")
    assert len(train) + len(test) == 9
    assert "u4" in set(test["user_id"]) and "u4" not in set(train["user_id"])
    with pytest.raises(ValueError, match="test_days"):
        time_split(_interactions(), 0)


def test_evaluate_recommender_counts_only_new_items() -> None:
    interactions = _interactions()
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u4"],
            "segment": ["data engineer", "data engineer", "hr partner", "hr partner"],
            "seniority": np.int64(1),
            "department": "x",
            "hire_date": pd.Timestamp("2024-01-01"),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["A", "B", "C"],
            "category": "python",
            "level": np.int64(1),
            "duration_hours": 1.0,
            "roles": "",
            "created": pd.Timestamp("2024-01-01"),
        }
    )
    train, test = time_split(interactions, test_days=3)
    model = SegmentPopularity().fit(RecsysData(users, items, train))
    metrics = evaluate_recommender(model, train, test, users, k_values=(1, 2))
    # u1's "a" was seen in training, so only u1->c, u2->b and u4->a count.
    assert metrics["n_test_users"] == 3.0
    # u4 (no history) is cold; the threshold 3 makes u1 and u2 cold too.
    assert metrics["n_cold_users"] == 3.0
    assert metrics["n_new_users"] == 1.0  # u4: no training item at all
    # u1 (unseen: c) gets c; u2 (unseen: b) gets b; u4 (hr) gets a first.
    assert metrics["precision_at_1"] == pytest.approx(1.0)
    assert metrics["ndcg_at_2"] == pytest.approx(1.0)
    assert metrics["coverage"] == pytest.approx(1.0)
    assert set(metrics) >= {
        "recall_at_2",
        "map_at_1",
        "ndcg_at_10_cold",
        "ndcg_at_10_warm",
        "ndcg_at_10_new",
        "ndcg_at_10_segment_data_engineer",
        "ndcg_at_10_segment_hr_partner",
    }
    # Coverage is of the top slice_k lists: one item each, 3 of 3 items here.
    top1 = evaluate_recommender(model, train, test, users, (1,), slice_k=1)
    assert top1["coverage"] == pytest.approx(1.0)
    # Fitted on u3's "a" alone, it knows no one else's history: every top 1 is
    # "a", so one of the three training items is covered.
    only_u3 = train[train["user_id"] == "u3"]
    narrow = SegmentPopularity().fit(RecsysData(users, items, only_u3))
    scored = evaluate_recommender(narrow, train, test, users, (1,), slice_k=1)
    assert scored["coverage"] == pytest.approx(1 / 3)


def test_leave_last_out_holds_out_each_users_last_items() -> None:
    interactions = _interactions()
    train, test = leave_last_out_split(interactions, n_last=1)
    held = test.groupby("user_id")["item_id"].agg(set).to_dict()
    assert held == {"u1": {"c"}, "u2": {"b"}}
    # u3 and u4 have one item: nothing would stay in training, so they stay whole.
    assert set(train.loc[train["user_id"].isin(["u3", "u4"]), "item_id"]) == {"a"}
    # u1 took "a" again after their cut: in neither part.
    assert len(train) == 6 and len(test) == 2
    for user, items in held.items():
        before = train[train["user_id"] == user]
        assert (
            before["timestamp"].max() < test[test["user_id"] == user]["timestamp"].min()
        )
        assert not items & set(before["item_id"])
    train2, test2 = leave_last_out_split(interactions, n_last=2)
    assert test2.groupby("user_id")["item_id"].agg(set).to_dict() == {
        "u1": {"b", "c"},
        "u2": {"c", "b"},
    }
    assert set(train2["user_id"]) == {"u1", "u2", "u3", "u4"}
    _, nobody = leave_last_out_split(interactions, n_last=1, min_history=3)
    assert nobody.empty
    with pytest.raises(ValueError, match="n_last"):
        leave_last_out_split(interactions, n_last=0)


def test_leave_last_out_never_splits_a_basket() -> None:
    rows = [
        ("u1", "a", "2025-01-01 09:00"),
        ("u1", "b", "2025-01-05 09:00"),
        ("u1", "c", "2025-01-05 09:00"),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    train, test = leave_last_out_split(frame.assign(event="purchase", weight=1.0))
    assert set(test["item_id"]) == {"b", "c"} and set(train["item_id"]) == {"a"}


def test_evaluate_protocols_scores_both_protocols_with_fresh_models() -> None:
    data = generate(n_users=60, n_items=20, n_days=80, seed=5)
    model = SegmentPopularity(window_days=30)
    results = evaluate_protocols({"segment": model}, data, test_days=14, k_values=(10,))
    metrics = results["segment"]
    assert not hasattr(model, "context_")  # scored through fitted clones
    for prefix in ("", LOLO_PREFIX):
        assert 0.0 < metrics[f"{prefix}ndcg_at_10"] <= 1.0
        assert 0.0 < metrics[f"{prefix}coverage"] <= 1.0
        assert f"{prefix}ndcg_at_10_cold" in metrics
    # Leave-last-out scores every user with a history, none of them new.
    assert metrics[f"{LOLO_PREFIX}n_new_users"] == 0.0
    assert metrics[f"{LOLO_PREFIX}n_test_users"] > metrics["n_test_users"]


def test_slice_name_is_metric_safe() -> None:
    assert slice_name("Data Engineer") == "data_engineer"
    assert slice_name("Children's") == "children_s"
    assert slice_name("???") == "unknown"
