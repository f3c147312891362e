"""Recommenders: one file per model, all following one contract.

``__init__`` stores parameters only; ``fit(data) -> Self`` learns and sets
``_``-suffixed attributes; ``recommend`` refuses an unfitted model with
``NotFittedError``; ``get_params`` returns the constructor parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, Self, runtime_checkable

import pandas as pd

from loopml.workloads.recsys.models.als import ALSRecommender
from loopml.workloads.recsys.models.global_popularity import GlobalPopularity
from loopml.workloads.recsys.models.ranker import TwoStageRanker
from loopml.workloads.recsys.models.segment_popularity import SegmentPopularity
from loopml.workloads.recsys.tables import RecsysData


@runtime_checkable
class Recommender(Protocol):
    """The contract every recommender (baselines included) implements."""

    def fit(self, data: RecsysData) -> Self:
        """Learn from ``data.interactions`` (with the users and items tables)."""
        ...

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int,
        exclude_seen: bool = True,
        segments: Mapping[str, str] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Up to ``k`` distinct ``(item_id, score)`` per user, best first."""
        ...

    def recommend_frame(
        self,
        user_ids: Sequence[str],
        k: int,
        exclude_seen: bool = True,
        segments: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """The same as one long ``user_id, rank, item_id, score`` table."""
        ...

    def get_params(self) -> dict[str, object]:
        """The constructor parameters."""
        ...


#: Every registered model, by name, as a zero-argument factory of defaults.
MODELS: dict[str, Callable[[], Recommender]] = {
    "segment_popularity": SegmentPopularity,
    "global_popularity": GlobalPopularity,
    "als": ALSRecommender,
    "ranker": TwoStageRanker,
}

__all__ = [
    "MODELS",
    "ALSRecommender",
    "GlobalPopularity",
    "Recommender",
    "SegmentPopularity",
    "TwoStageRanker",
]
