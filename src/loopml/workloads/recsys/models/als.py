"""Implicit-feedback matrix factorisation (ALS) with a segment fallback."""

from __future__ import annotations

import logging
import os
from typing import Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from loopml.workloads.recsys.features import FeatureContext
from loopml.workloads.recsys.models.base import (
    BLOCK,
    FloatArray,
    IntArray,
    RecommenderBase,
)
from loopml.workloads.recsys.scoring import top_k_inner
from loopml.workloads.recsys.sparse import csr_rows
from loopml.workloads.recsys.tables import RecsysData

Float32Array = npt.NDArray[np.float32]

log = logging.getLogger(__name__)


class ALSRecommender(RecommenderBase):
    """implicit's CPU ALS on summed interaction weights.

    Users with training history are scored by ``user_factors @ item_factors.T``
    (blocked float32 products with an exact top-k, ``scoring.top_k_inner``);
    users without history (new or unknown) get segment popularity, as in
    :class:`SegmentPopularity`. Only the factor matrices (float32, implicit's
    own precision) are kept after fit, so a pickled model needs numpy, not
    implicit.
    """

    def __init__(
        self,
        factors: int = 32,
        iterations: int = 15,
        regularization: float = 10.0,
        alpha: float = 1.0,
        window_days: int = 90,
        seed: int = 42,
    ) -> None:
        """Store the parameters.

        Args:
            factors: latent dimensions.
            iterations: ALS sweeps.
            regularization: L2 penalty on the factors.
            alpha: confidence per unit of interaction weight.
            window_days: popularity window of the cold-user fallback.
            seed: seeds the factor initialisation.
        """
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.window_days = window_days
        self.seed = seed

    def fit(self, data: RecsysData) -> Self:
        """Factorise the user x item weight matrix of the training interactions."""
        self._fit_context(data)
        # Single-threaded BLAS keeps the factors bit-for-bit reproducible, and
        # implicit warns (and slows down) when OpenBLAS runs its own threads.
        # numpy has usually loaded OpenBLAS already, so the variable alone is
        # not enough: threadpoolctl limits the live thread pool too.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=1,
                random_state=self.seed,
            )
            model.fit(self.context_.weights.astype(np.float32), show_progress=False)
        self.user_factors_: Float32Array = np.asarray(model.user_factors, np.float32)
        self.item_factors_: Float32Array = np.asarray(model.item_factors, np.float32)
        log.info(
            "ALS fitted: %d users x %d items, %d factors",
            *self.context_.weights.shape,
            self.factors,
        )
        return self

    # top_k_inner bounds its own memory, so it gets many users per call.
    block_size = 1 << 16

    def factor_scores(self, context: FeatureContext, user_rows: IntArray) -> FloatArray:
        """ALS scores of a block of users; NaN rows for users without history."""
        users = self.user_factors_[user_rows].astype(np.float64)
        scores: FloatArray = users @ self.item_factors_.T.astype(np.float64)
        scores[context.user_length[user_rows] == 0] = np.nan
        return scores

    def pair_scores(
        self, context: FeatureContext, user_rows: IntArray, items: IntArray
    ) -> FloatArray:
        """ALS score of each (user, item) pair; NaN for users without history.

        Computed per pair in float64, so a pair's score never depends on which
        other pairs are scored with it.
        """
        users = self.user_factors_[user_rows].astype(np.float64)
        scores: FloatArray = np.einsum(
            "ij,ij->i", users, self.item_factors_[items].astype(np.float64)
        )
        scores[context.user_length[user_rows] == 0] = np.nan
        return scores

    def factor_top_k(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        exclude_seen: bool,
        k: int,
        seen: sp.csr_matrix | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Exact top-k available items by ALS score of users with history.

        ``seen``: the users' rows of the history, when the caller has them.

        Returns:
            ``users x min(k, items)`` item columns (-1 when none is left) and
            their scores (``-inf`` there), best first.
        """
        columns, values = top_k_inner(
            self.user_factors_[user_rows],
            self.item_factors_,
            k,
            exclude=(
                (csr_rows(context.weights, user_rows) if seen is None else seen)
                if exclude_seen
                else None
            ),
            allowed=context.item_available,
        )
        return columns, values.astype(np.float64)

    def _top_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> tuple[IntArray, FloatArray]:
        columns = np.full((len(user_rows), k), -1, dtype=np.int64)
        values = np.full((len(user_rows), k), -np.inf)
        warm = np.flatnonzero(context.user_length[user_rows] > 0)
        if len(warm):
            cols, vals = self.factor_top_k(context, user_rows[warm], exclude_seen, k)
            columns[warm, : cols.shape[1]] = cols
            values[warm, : vals.shape[1]] = vals
        cold = np.flatnonzero(context.user_length[user_rows] == 0)
        # The fallback scores the whole catalogue: BLOCK users at a time.
        for start in range(0, len(cold), BLOCK):
            part = cold[start : start + BLOCK]
            cols, vals = super()._top_block(
                context, user_rows[part], segment_rows[part], exclude_seen, k
            )
            columns[part, : cols.shape[1]] = cols
            values[part, : vals.shape[1]] = vals
        return columns, values

    def _score_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> FloatArray:
        scores = self.factor_scores(context, user_rows)
        cold = np.isnan(scores[:, 0]) if scores.shape[1] else np.zeros(0, bool)
        if cold.any():
            # Popularity shares are <= 1; shifting them below every ALS score
            # is unnecessary as a user's row is either all ALS or all fallback.
            scores[cold] = context.segment_popularity[segment_rows[cold]]
        return scores
