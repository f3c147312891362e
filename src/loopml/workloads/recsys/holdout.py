"""The promotion gate's holdout for recsys: the latest ``test_days`` days.

Every registered recommender and every baseline (segment popularity, the
rule-based service; global popularity; ALS alone; each fitted on the
interactions before the cut) rank items for the users of the last
``test_days``; relevance is what each user took in that period and had
not taken before. Training stops at the same cut, so no scored model has
seen the holdout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from loopml.workloads.recsys.config import RecsysSettings
from loopml.workloads.recsys.evaluate import evaluate_recommender, time_split
from loopml.workloads.recsys.models import Recommender
from loopml.workloads.recsys.tables import RecsysData

#: The k of the gate's metrics: the primary metric is ndcg_at_10.
GATE_K = 10
SEGMENT_PREFIX = f"ndcg_at_{GATE_K}_segment_"
#: each segment's test users (the gate does not judge a segment of a few).
SEGMENT_SIZE_PREFIX = "n_users_segment_"
#: NDCG@10 per age band (the inclusion check) and each band's test users.
GROUP_PREFIX = f"group_ndcg_at_{GATE_K}_"
GROUP_SIZE_PREFIX = "n_users_group_"


def holdout_metrics(
    cfg: RecsysSettings,
    data: pd.DataFrame,
    models: Mapping[str, Any],
    baselines: Mapping[str, Recommender],
) -> dict[str, dict[str, float]]:
    """Score fitted recommenders (``.recommender`` of each python model).

    Args:
        cfg: the recsys settings.
        data: the validated event log.
        models: python models by name (``challenger``, ``champion``).
        baselines: unfitted baselines by name, fitted here before the cut.

    Returns:
        Per name (models and baselines): precision/recall/NDCG/MAP at ``k``
        and 10, ``coverage``, ``ndcg_at_10_segment_<segment>``, the cold
        slice and NDCG@10 per age band (``group_ndcg_at_10_<band>``).
    """
    tables = RecsysData.from_frame(data)
    train, test = time_split(tables.interactions, cfg.test_days)
    history = tables.with_interactions(train)
    fitted = {name: model.fit(history) for name, model in baselines.items()}
    recommenders = {name: model.recommender for name, model in models.items()}
    scores: dict[str, dict[str, float]] = {}
    for name, recommender in {**recommenders, **fitted}.items():
        scores[name] = evaluate_recommender(
            recommender,
            train,
            test,
            tables.users,
            k_values=sorted({GATE_K, cfg.k}),
            cold_threshold=cfg.cold_threshold,
            slice_k=GATE_K,
        )
    return scores


def check_recommendations(answer: pd.DataFrame, k: int) -> list[str]:
    """Problems of a ``RecsysModel.predict`` answer: k distinct, finite items."""
    problems = []
    counts = answer.groupby("user_id")["item_id"].agg(["size", "nunique"])
    if (counts["size"] != counts["nunique"]).any():
        problems.append("a user got the same item twice")
    if (counts["size"] > k).any():
        problems.append(f"a user got more than {k} items")
    if answer.empty or not np.isfinite(answer["score"].to_numpy(float)).all():
        problems.append("no recommendations, or a NaN/infinite score")
    return problems
