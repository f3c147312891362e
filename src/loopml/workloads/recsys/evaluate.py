"""Offline evaluation: two protocols, ranking metrics at k and slices.

Relevance is binary: an item is relevant for a user when the user interacted
with it in the test period and never in training. Metrics average over the
users with at least one relevant item; a user's recall divides by all of the
user's relevant items, NDCG and MAP by the best achievable in ``k`` slots.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.recsys.models import Recommender
from loopml.workloads.recsys.splits import leave_last_out_split, time_split
from loopml.workloads.recsys.tables import UNKNOWN_AGE_BAND, RecsysData

__all__ = [
    "GROUP_COLUMN",
    "LOLO_PREFIX",
    "N_LAST",
    "catalogue_coverage",
    "evaluate_protocols",
    "evaluate_recommender",
    "leave_last_out_split",
    "map_at_k",
    "ndcg_at_k",
    "group_gap",
    "per_user_metrics",
    "precision_at_k",
    "recall_at_k",
    "slice_name",
    "time_split",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Prefix of the per-user leave-last-N-out protocol's metrics.
LOLO_PREFIX = "lolo_"
#: Items held out per user in that protocol (each user's last one).
N_LAST = 1
#: The users' sensitive attribute whose groups are compared (inclusion).
GROUP_COLUMN = "age_band"


def _hits(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Hit matrix (users x k) and relevant counts, for users with any relevant."""
    hits = np.zeros((len(relevant), k), dtype=bool)
    for row, (items, truth) in enumerate(zip(recommended, relevant, strict=True)):
        hits[row, : min(k, len(items))] = [i in truth for i in items[:k]]
    n_relevant = np.array([len(t) for t in relevant], dtype=float)
    keep = n_relevant > 0
    return hits[keep], n_relevant[keep]


def _mean(values: FloatArray) -> float:
    return float(values.mean()) if len(values) else 0.0


def per_user_metrics(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> dict[str, FloatArray]:
    """Precision, recall, NDCG and AP at ``k`` per user with a relevant item."""
    hits, n_relevant = _hits(recommended, relevant, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k).astype(int) - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return {
        "precision": hits.sum(axis=1) / k,
        "recall": hits.sum(axis=1) / n_relevant,
        "ndcg": (hits * discount).sum(axis=1) / ideal,
        "map": (precision_at * hits).sum(axis=1) / np.minimum(n_relevant, k),
    }


def precision_at_k(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> float:
    """Mean share of the top ``k`` that is relevant."""
    return _mean(per_user_metrics(recommended, relevant, k)["precision"])


def recall_at_k(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> float:
    """Mean share of each user's relevant items found in the top ``k``."""
    return _mean(per_user_metrics(recommended, relevant, k)["recall"])


def ndcg_at_k(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> float:
    """Mean normalised discounted cumulative gain of the top ``k``."""
    return _mean(per_user_metrics(recommended, relevant, k)["ndcg"])


def map_at_k(
    recommended: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int
) -> float:
    """Mean average precision of the top ``k``."""
    return _mean(per_user_metrics(recommended, relevant, k)["map"])


def catalogue_coverage(recommended: Sequence[Sequence[str]], n_items: int) -> float:
    """Share of the catalogue recommended to at least one user."""
    distinct = {item for items in recommended for item in items}
    return len(distinct) / n_items if n_items else 0.0


def slice_name(segment: str) -> str:
    """A metric-name-safe form of a segment (``data engineer`` -> ``data_engineer``)."""
    return re.sub(r"[^0-9a-z]+", "_", segment.lower()).strip("_") or "unknown"


def group_gap(values: Sequence[float]) -> float:
    """Relative gap between the best and the worst group: ``(max - min) / max``.

    0 for fewer than two groups or a best group at 0 (nothing to compare).
    """
    best = max(values, default=0.0)
    return (best - min(values)) / best if len(values) > 1 and best > 0 else 0.0


def evaluate_recommender(
    model: Recommender,
    train: pd.DataFrame,
    test: pd.DataFrame,
    users: pd.DataFrame,
    k_values: Sequence[int] = (5, 10, 20),
    cold_threshold: int = 3,
    slice_k: int = 10,
) -> dict[str, float]:
    """Score a recommender fitted on ``train`` against the ``test`` period.

    Args:
        model: a recommender already fitted on ``train``.
        train: the training interactions (what counts as already seen).
        test: the test interactions.
        users: the users table (segments for slices and cold users).
        k_values: cut-offs of the ranking metrics.
        cold_threshold: users with fewer distinct training items are "cold".
        slice_k: the cut-off of the slices and of ``coverage``.

    Returns:
        ``precision/recall/ndcg/map_at_<k>``, ``coverage`` (of the top
        ``slice_k`` lists), ``ndcg_at_<slice_k>_segment_<name>``, the user
        slices ``ndcg_at_<slice_k>_cold`` (fewer than ``cold_threshold``
        training items), ``_warm`` (the others) and ``_new`` (no training
        item; only when there is such a user), the user counts
        ``n_test_users``, ``n_cold_users`` and ``n_new_users``, and when the
        users table has a :data:`GROUP_COLUMN`, per known group (not
        ``unknown``) ``group_ndcg_at_<slice_k>_<group>`` and its user count
        ``n_users_group_<group>``, and ``group_gap_ndcg_at_<slice_k>``
        (:func:`group_gap` of the groups).
    """
    seen = set(zip(train["user_id"], train["item_id"], strict=True))
    fresh = [
        (u, i)
        for u, i in zip(test["user_id"], test["item_id"], strict=True)
        if (u, i) not in seen
    ]
    truth = pd.DataFrame(fresh, columns=["user_id", "item_id"]).drop_duplicates()
    relevant_by_user = truth.groupby("user_id")["item_id"].agg(set)
    user_ids = sorted(relevant_by_user.index)
    relevant = [relevant_by_user[u] for u in user_ids]
    segment_of = users.set_index("user_id")["segment"]
    segments = {u: str(segment_of[u]) for u in user_ids if u in segment_of.index}
    k_max = max(*k_values, slice_k)
    recs = model.recommend(user_ids, k_max, exclude_seen=True, segments=segments)
    recommended = [[item for item, _ in row] for row in recs]

    metrics: dict[str, float] = {}
    for k in sorted(set(k_values)):
        for name, values in per_user_metrics(recommended, relevant, k).items():
            metrics[f"{name}_at_{k}"] = _mean(values)
    catalogue = set(train["item_id"])
    top = [items[:slice_k] for items in recommended]
    metrics["coverage"] = catalogue_coverage(top, len(catalogue))

    ndcg = per_user_metrics(recommended, relevant, slice_k)["ndcg"]
    history = train.groupby("user_id")["item_id"].nunique()
    length = np.array([history.get(u, 0) for u in user_ids])
    cold, new = length < cold_threshold, length == 0
    metrics[f"ndcg_at_{slice_k}_cold"] = _mean(ndcg[cold])
    metrics[f"ndcg_at_{slice_k}_warm"] = _mean(ndcg[~cold])
    if new.any():
        metrics[f"ndcg_at_{slice_k}_new"] = _mean(ndcg[new])
    user_segments = np.array([segments.get(u, "unknown") for u in user_ids])
    for segment in sorted(set(user_segments)):
        key = f"ndcg_at_{slice_k}_segment_{slice_name(segment)}"
        metrics[key] = _mean(ndcg[user_segments == segment])
        metrics[f"n_users_segment_{slice_name(segment)}"] = float(
            (user_segments == segment).sum()
        )
    if GROUP_COLUMN in users.columns:
        group_of = users.set_index("user_id")[GROUP_COLUMN].astype(str)
        user_groups = np.array([group_of.get(u, UNKNOWN_AGE_BAND) for u in user_ids])
        by_group: list[float] = []
        for group in sorted(set(user_groups) - {UNKNOWN_AGE_BAND}):
            by_group.append(_mean(ndcg[user_groups == group]))
            metrics[f"group_ndcg_at_{slice_k}_{slice_name(group)}"] = by_group[-1]
            metrics[f"n_users_group_{slice_name(group)}"] = float(
                (user_groups == group).sum()
            )
        metrics[f"group_gap_ndcg_at_{slice_k}"] = group_gap(by_group)
    metrics["n_test_users"] = float(len(user_ids))
    metrics["n_cold_users"] = float(cold.sum())
    metrics["n_new_users"] = float(new.sum())
    return metrics


def evaluate_protocols(
    models: Mapping[str, Recommender],
    data: RecsysData,
    test_days: int,
    n_last: int = N_LAST,
    k_values: Sequence[int] = (5, 10, 20),
    cold_threshold: int = 3,
    slice_k: int = 10,
) -> dict[str, dict[str, float]]:
    """Fit and score every model in both protocols (see ``splits.py``).

    Each model is cloned from its parameters and fitted once per protocol on
    that protocol's training part: the global time cut (the last
    ``test_days``; metrics as :func:`evaluate_recommender` names them) and the
    per-user leave-last-``n_last``-out (the same names after
    :data:`LOLO_PREFIX`).

    Args:
        models: unfitted recommenders by name (they stay unfitted).
        data: users, items and every interaction.
        test_days: length of the global cut's test period.
        n_last: items held out per user in the second protocol.
        k_values: cut-offs of the ranking metrics.
        cold_threshold: users with fewer distinct training items are "cold".
        slice_k: the cut-off of the slices and of ``coverage``.

    Returns:
        Per model name, the metrics of both protocols in one mapping.
    """
    splits = {
        "": time_split(data.interactions, test_days),
        LOLO_PREFIX: leave_last_out_split(data.interactions, n_last),
    }
    results: dict[str, dict[str, float]] = {name: {} for name in models}
    for prefix, (train, test) in splits.items():
        train_data = data.with_interactions(train)
        for name, model in models.items():
            fitted = type(model)(**model.get_params()).fit(train_data)
            scores = evaluate_recommender(
                fitted,
                train,
                test,
                data.users,
                k_values=k_values,
                cold_threshold=cold_threshold,
                slice_k=slice_k,
            )
            log.info(
                "%s %sndcg@%d=%.4f",
                name,
                prefix,
                slice_k,
                scores[f"ndcg_at_{slice_k}"],
            )
            results[name].update({prefix + k: v for k, v in scores.items()})
    return results
