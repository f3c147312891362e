"""What every recommender shares: the fitted history, blocks and exact top-k.

A subclass scores a block of users against the whole catalogue
(``_score_block``); this base resolves users and segments, masks seen and
unavailable items, and takes an exact top-k per block (``scoring.top_k``).
A model with a faster exact path for a block (ALS, the ranker) overrides
``_top_block`` instead. ``top_items`` and ``recommend_frame`` give every
user's top-k as arrays and a long table, without a Python loop per user.
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

from loopml.sdk.contract import check_fitted
from loopml.workloads.recsys.features import FeatureContext, build_context
from loopml.workloads.recsys.scoring import top_k
from loopml.workloads.recsys.sparse import csr_rows
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


class RecommenderBase(ABC):
    """Shared fit state and the block-wise ``recommend`` of every model."""

    window_days: int
    #: users per call of ``_top_block``; bounds its memory.
    block_size: int = BLOCK

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
        check_fitted(self, "context_")
        return self.context_

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

    def _top_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> tuple[IntArray, FloatArray]:
        """Best ``k`` item columns and scores per user of a block (-1 / -inf pad)."""
        scores = self._score_block(context, user_rows, segment_rows, exclude_seen, k)
        scores[:, ~context.item_available] = -np.inf
        if exclude_seen:
            seen = csr_rows(context.weights, user_rows).tocoo()
            scores[seen.row, seen.col] = -np.inf
        columns, values = top_k(scores, k)
        return columns, values.astype(np.float64)

    def top_items(
        self,
        user_ids: Sequence[str],
        k: int,
        exclude_seen: bool = True,
        segments: Mapping[str, str] | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Every user's top ``k`` as arrays: the engine of ``recommend``.

        Args:
            user_ids: the users to recommend for.
            k: how many items per user (>= 1).
            exclude_seen: leave out items a user interacted with in training.
            segments: segment per user, overriding the fitted one.

        Returns:
            ``users x k`` item columns (into ``context_.item_ids``; -1 where
            the catalogue ran out) and scores (``-inf`` there), best first.

        Raises:
            NotFittedError: before ``fit``.
            ValueError: when ``k < 1``.
        """
        context = self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        ids = [str(u) for u in user_ids]
        columns = np.full((len(ids), k), -1, dtype=np.int64)
        values = np.full((len(ids), k), -np.inf)
        for start in range(0, len(ids), self.block_size):
            block = ids[start : start + self.block_size]
            rows = context.user_rows(block)
            seg_rows = self._segment_rows(context, block, rows, segments)
            cols, vals = self._top_block(context, rows, seg_rows, exclude_seen, k)
            stop = start + len(block)
            columns[start:stop, : cols.shape[1]] = cols
            values[start:stop, : vals.shape[1]] = vals
        columns[~np.isfinite(values)] = -1
        return columns, values

    def recommend_frame(
        self,
        user_ids: Sequence[str],
        k: int,
        exclude_seen: bool = True,
        segments: Mapping[str, str] | None = None,
    ) -> pd.DataFrame:
        """Every user's top ``k`` as one long table (see :meth:`top_items`).

        Returns:
            ``user_id, rank, item_id, score``: up to ``k`` rows per user, in
            input order then rank order (rank 1 is the best).
        """
        columns, values = self.top_items(user_ids, k, exclude_seen, segments)
        position, slot = np.nonzero(columns >= 0)
        items = self._check_fitted().item_ids.to_numpy()
        return pd.DataFrame(
            {
                "user_id": np.asarray([str(u) for u in user_ids], dtype=object)[
                    position
                ],
                "rank": (slot + 1).astype(np.int64),
                "item_id": items[columns[position, slot]],
                "score": values[position, slot].astype(np.float64),
            }
        )

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
        columns, values = self.top_items(user_ids, k, exclude_seen, segments)
        items = self._check_fitted().item_ids
        return [
            list(
                zip(
                    items[cols[cols >= 0]].tolist(),
                    vals[cols >= 0].astype(float).tolist(),
                    strict=True,
                )
            )
            for cols, vals in zip(columns, values, strict=True)
        ]


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
