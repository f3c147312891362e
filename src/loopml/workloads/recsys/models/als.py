"""Implicit-feedback matrix factorisation (ALS) with a segment fallback."""

from __future__ import annotations

import logging
import os
from typing import Self

import numpy as np
from threadpoolctl import threadpool_limits

from loopml.workloads.recsys.features import FeatureContext
from loopml.workloads.recsys.models.base import FloatArray, IntArray, RecommenderBase
from loopml.workloads.recsys.tables import RecsysData

log = logging.getLogger(__name__)


class ALSRecommender(RecommenderBase):
    """implicit's CPU ALS on summed interaction weights.

    Users with training history are scored by ``user_factors @ item_factors.T``
    (block-wise matrix products); users without history (new or unknown) get
    segment popularity, as in :class:`SegmentPopularity`. Only the factor
    matrices are kept after fit, so a pickled model needs numpy, not implicit.
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
        self.user_factors_: FloatArray = np.asarray(model.user_factors, np.float64)
        self.item_factors_: FloatArray = np.asarray(model.item_factors, np.float64)
        log.info(
            "ALS fitted: %d users x %d items, %d factors",
            *self.context_.weights.shape,
            self.factors,
        )
        return self

    def factor_scores(self, context: FeatureContext, user_rows: IntArray) -> FloatArray:
        """ALS scores of a block of users; NaN rows for users without history."""
        scores: FloatArray = self.user_factors_[user_rows] @ self.item_factors_.T
        scores[context.user_length[user_rows] == 0] = np.nan
        return scores

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
