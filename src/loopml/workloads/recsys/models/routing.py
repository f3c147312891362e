"""Who answers users with little history: the ranker or a popularity baseline.

The two-stage ranker learns mostly from users with a history. For the users
with fewer than ``cold_threshold`` items it may do worse than plain
popularity, so at fit time, on inner validation users (scored by rankers that
never trained on them), each cold slice (``new``: no item; ``light``: some,
but fewer than the threshold) is given to whichever of the ranker, segment
popularity and global popularity had the best NDCG@k there. The baselines'
orderings are read from the candidates' own features, so the three are
compared on the same users and the same candidates (the training sample of
them: every taken item and some others).
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pandas as pd

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RANKER = "ranker"
SEGMENT = "segment_popularity"
GLOBAL = "global_popularity"
#: The candidates of a slice, in the order that wins a tie.
ROUTES: tuple[str, ...] = (RANKER, SEGMENT, GLOBAL)
NEW, LIGHT = "new", "light"


def cold_slice(history_length: FloatArray, cold_threshold: int) -> npt.NDArray[np.str_]:
    """``new``, ``light`` or ``""`` (warm) for each user's number of items."""
    return np.where(
        history_length == 0,
        NEW,
        np.where(history_length < cold_threshold, LIGHT, ""),
    )


def group_ndcg(
    keys: list[FloatArray], labels: IntArray, groups: IntArray, k: int
) -> FloatArray:
    """NDCG@k of each group (a user's candidates) ordered by ``keys``.

    Args:
        keys: sort keys, the first most significant, higher first; rows tied
            on every key keep their order (the item column order).
        labels: 1 where the candidate was taken.
        groups: the sizes of consecutive groups.
        k: the cut-off.

    Returns:
        One NDCG per group; 0 for a group without any label.
    """
    group = np.repeat(np.arange(len(groups)), groups)
    order = np.lexsort((np.arange(len(labels)), *[-key for key in keys[::-1]], group))
    start = np.concatenate([[0], np.cumsum(groups)[:-1]])
    rank = np.arange(len(labels)) - start[group[order]]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    top = rank < k
    gain = labels[order][top] * discount[rank[top]]
    dcg = np.bincount(group[order][top], weights=gain, minlength=len(groups))
    n_relevant = np.bincount(group, weights=labels, minlength=len(groups))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    best = ideal[np.minimum(n_relevant, k).astype(np.int64)]
    ndcg: FloatArray = np.divide(dcg, best, out=np.zeros(len(groups)), where=best > 0)
    return ndcg


def choose_routes(
    features: pd.DataFrame,
    labels: IntArray,
    groups: IntArray,
    ranker_scores: FloatArray,
    cold_threshold: int,
    k: int = 10,
) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """The best of :data:`ROUTES` for each cold slice, on validation groups.

    Args:
        features: the validation candidates' ranking features.
        labels: 1 where a candidate was taken.
        groups: sizes of the consecutive groups (one per user and split).
        ranker_scores: the ranker's score of each candidate (a ranker that
            never saw these groups).
        cold_threshold: users with fewer items are cold.
        k: the cut-off of the NDCG that decides.

    Returns:
        ``(routes, scores)``: the route per slice (a slice without
        validation users gets the popularity baseline that is best over all
        of them), and the mean NDCG@k of every route and the number of
        validation groups per slice.
    """
    orderings = {
        RANKER: [ranker_scores],
        SEGMENT: [
            features["segment_popularity"].to_numpy(float),
            features["global_popularity"].to_numpy(float),
        ],
        GLOBAL: [
            features["global_popularity"].to_numpy(float),
            features["popularity_all_time"].to_numpy(float),
        ],
    }
    ndcg = {
        name: group_ndcg(keys, labels, groups, k) for name, keys in orderings.items()
    }
    first_rows = np.concatenate([[0], np.cumsum(groups)[:-1]]).astype(np.int64)
    length = features["user_history_length"].to_numpy(float)[first_rows]
    slices = cold_slice(length, cold_threshold)
    routes: dict[str, str] = {}
    scores: dict[str, dict[str, float]] = {}
    for name in (NEW, LIGHT):
        members = slices == name
        if members.any():
            means = {route: float(ndcg[route][members].mean()) for route in ROUTES}
            routes[name] = max(ROUTES, key=lambda route: means[route])
            scores[name] = {**means, "n_groups": float(members.sum())}
        else:
            # The ranker never trained on this slice either: the baseline
            # that ranks every validation user best.
            overall = {route: float(ndcg[route].mean()) for route in ROUTES[1:]}
            routes[name] = max(ROUTES[1:], key=lambda route: overall[route])
    log.info("cold routes %s (validation NDCG@%d: %s)", routes, k, scores)
    return routes, scores
