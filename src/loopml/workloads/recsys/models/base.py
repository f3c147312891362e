"""What every recommender shares: the fitted history, blocks and exact top-k.

A subclass only scores a block of users against the whole catalogue
(``_score_block``); this base resolves users and segments, masks seen and
unavailable items, and takes an exact top-k per block with ``argpartition``.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.errors import NotFittedError
from loopml.workloads.recsys.features import FeatureContext, build_context
from loopml.workloads.recsys.tables import RecsysData

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Recommendations = list[list[tuple[str, float]]]
# Users scored at once: bounds memory to BLOCK x catalogue floats.
BLOCK = 1024


def canonical_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """Sort interactions fully, so results never depend on the input row order."""
    order = ["timestamp", "user_id", "item_id", "event", "weight"]
    return interactions.sort_values(order, kind="stable").reset_index(drop=True)


def top_k(scores: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """Exact top-k columns per row, best first; ``-inf`` marks excluded items.

    Returns:
        Column indices and scores, both ``rows x min(k, columns)``; ties within
        the top k are ordered by column index.
    """
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), (scores.shape[0], k))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    columns = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return columns, np.take_along_axis(part_scores, order, axis=1)


class RecommenderBase(ABC):
    """Shared fit state and the block-wise ``recommend`` of every model."""

    window_days: int

    def get_params(self) -> dict[str, object]:
        """The constructor parameters, as stored by ``__init__``."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def _fit_context(self, data: RecsysData) -> None:
        """Index the training history (sorted first: row order never matters)."""
        self.context_: FeatureContext = build_context(
            canonical_interactions(data.interactions),
            data.users,
            data.items,
            self.window_days,
        )

    def _check_fitted(self) -> FeatureContext:
        context: FeatureContext | None = getattr(self, "context_", None)
        if context is None:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit(data) first"
            )
        return context

    def _segment_rows(
        self,
        context: FeatureContext,
        user_ids: list[str],
        user_rows: IntArray,
        segments: Mapping[str, str] | None,
    ) -> IntArray:
        """A segment given for a user wins over the one known at fit time."""
        rows = context.user_segment[user_rows].copy()
        if segments:
            given = [segments.get(u) for u in user_ids]
            override = np.array([s is not None for s in given])
            if override.any():
                rows[override] = context.segment_rows(given)[override]
        return rows

    @abstractmethod
    def _score_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> FloatArray:
        """Scores of a block of users for every catalogue item (higher is better)."""

    def recommend(
        self,
        user_ids: Sequence[str],
        k: int,
        exclude_seen: bool = True,
        segments: Mapping[str, str] | None = None,
    ) -> Recommendations:
        """Recommend up to ``k`` distinct items per user, best first.

        Users unknown at fit time get the popular items of the segment given
        in ``segments``, or global popularity when none is given (or the
        segment is unknown). Fewer than ``k`` items come back only when the
        catalogue has fewer unseen items.

        Args:
            user_ids: the users to recommend for.
            k: how many items per user (>= 1).
            exclude_seen: leave out items a user interacted with in training.
            segments: segment per user, overriding the fitted one.

        Returns:
            Per user, ``(item_id, score)`` pairs sorted by decreasing score.

        Raises:
            NotFittedError: before ``fit``.
            ValueError: when ``k < 1``.
        """
        context = self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        ids = [str(u) for u in user_ids]
        result: Recommendations = []
        for start in range(0, len(ids), BLOCK):
            block = ids[start : start + BLOCK]
            rows = context.user_rows(block)
            seg_rows = self._segment_rows(context, block, rows, segments)
            scores = self._score_block(context, rows, seg_rows, exclude_seen, k)
            scores[:, ~context.item_available] = -np.inf
            if exclude_seen:
                seen = context.weights[rows].tocoo()
                scores[seen.row, seen.col] = -np.inf
            columns, values = top_k(scores, k)
            for cols, vals in zip(columns, values, strict=True):
                keep = np.isfinite(vals)
                result.append(
                    list(
                        zip(
                            context.item_ids[cols[keep]].tolist(),
                            vals[keep].astype(float).tolist(),
                            strict=True,
                        )
                    )
                )
        return result


class PopularityBase(RecommenderBase):
    """Shared parameters and fit of the popularity rankings (no learning)."""

    def __init__(self, window_days: int = 90) -> None:
        """Store the parameters.

        Args:
            window_days: how many days before the end of training count.
        """
        self.window_days = window_days

    def fit(self, data: RecsysData) -> Self:
        """Count recent popularity (overall and per segment) in the training data."""
        self._fit_context(data)
        log.info(
            "%s fitted on %d items, %d segments",
            type(self).__name__,
            len(self.context_.item_ids),
            len(self.context_.segments),
        )
        return self
