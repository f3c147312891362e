"""Two-stage recommender: ALS + segment-popular candidates, LambdaRank ranker.

Stage 1 proposes, per user, the ALS top ``n_candidates`` united with the
segment's most popular ``n_candidates`` (users without history get only the
latter). Stage 2 orders them with a LightGBM LambdaRank model on the features
of ``features.py``. The ranker is trained on time splits inside the training
window: for each of ``n_windows`` consecutive ``label_days`` windows at its
end, stage 1 and the features come from the history before the window and the
labels from the window, so features never see their labels.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightgbm import LGBMRanker

from loopml.workloads.recsys.features import (
    FeatureContext,
    PairFeatures,
    build_features,
)
from loopml.workloads.recsys.models.als import ALSRecommender
from loopml.workloads.recsys.models.base import (
    BLOCK,
    FloatArray,
    IntArray,
    RecommenderBase,
    canonical_interactions,
)
from loopml.workloads.recsys.tables import RecsysData

log = logging.getLogger(__name__)


class TwoStageRanker(RecommenderBase):
    """ALS and segment-popularity candidates re-ranked by LightGBM LambdaRank."""

    def __init__(
        self,
        n_candidates: int = 100,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        label_days: int = 28,
        n_windows: int = 2,
        factors: int = 32,
        iterations: int = 15,
        regularization: float = 10.0,
        alpha: float = 1.0,
        window_days: int = 90,
        seed: int = 42,
        n_jobs: int = 1,
    ) -> None:
        """Store the parameters.

        Args:
            n_candidates: candidates from each stage-1 source per user.
            n_estimators: boosting rounds of the ranker.
            learning_rate: shrinkage of the ranker.
            num_leaves: leaves per tree.
            min_child_samples: minimum rows per leaf.
            label_days: length of each inner label window.
            n_windows: how many consecutive label windows (each with its own
                stage-1 fit on the history before it) train the ranker.
            factors: ALS latent dimensions.
            iterations: ALS sweeps.
            regularization: ALS L2 penalty.
            alpha: ALS confidence per unit of weight.
            window_days: the recent-popularity window.
            seed: seeds ALS and LightGBM.
            n_jobs: LightGBM training threads. Results do not depend on it
                (deterministic mode); one thread is the default because
                OpenMP threads competing for a busy CPU can be ten times
                slower.
        """
        self.n_candidates = n_candidates
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.label_days = label_days
        self.n_windows = n_windows
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.window_days = window_days
        self.seed = seed
        self.n_jobs = n_jobs

    def _als(self) -> ALSRecommender:
        return ALSRecommender(
            factors=self.factors,
            iterations=self.iterations,
            regularization=self.regularization,
            alpha=self.alpha,
            window_days=self.window_days,
            seed=self.seed,
        )

    def fit(
        self, data: RecsysData, pair_features: PairFeatures = build_features
    ) -> Self:
        """Train the ranker on an inner split, then refit stage 1 on everything.

        Args:
            data: users, items and the training interactions.
            pair_features: gathers the training pairs' features at each inner
                cutoff; the plain-code :func:`build_features` by default, or
                the point-in-time reader of ``feature_store.ranking`` (same
                values). Scoring always uses ``build_features`` on the fitted
                context.

        Raises:
            ValueError: when the training window is too short to hold both a
                history and ``label_days`` of labels.
        """
        interactions = canonical_interactions(data.interactions)
        end = interactions["timestamp"].max()
        parts = []
        for window in range(self.n_windows):
            cut = end - pd.Timedelta(days=self.label_days * (window + 1))
            upto = end - pd.Timedelta(days=self.label_days * window)
            before = interactions["timestamp"] < cut
            if not before.any():
                raise ValueError(
                    "the training interactions must span more than "
                    f"{self.n_windows} x label_days={self.label_days} days"
                )
            # The last window includes the very last interaction.
            after = ~before & (
                (interactions["timestamp"] < upto) | (interactions["timestamp"] == end)
            )
            if after.any():
                inner = self._als().fit(data.with_interactions(interactions[before]))
                parts.append(self._examples(inner, interactions[after], pair_features))
        labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        if not labels.sum():
            raise ValueError("no candidate of the inner splits was ever taken")
        features = pd.concat([p[0] for p in parts], ignore_index=True)
        groups = np.concatenate([p[2] for p in parts])
        self.ranker_ = LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        self.ranker_.fit(features, labels, group=groups)
        log.info(
            "ranker trained on %d candidates of %d users (%d positives)",
            len(labels),
            len(groups),
            int(labels.sum()),
        )
        self.als_ = self._als().fit(data.with_interactions(interactions))
        self.context_ = self.als_.context_
        return self

    def _candidates(
        self,
        als: ALSRecommender,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        n: int,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Stage 1 for a block: (position in block, item column, ALS score).

        Both sources are exact top-n lists, unavailable (and, with
        ``exclude_seen``, already seen) items left out; pairs come out by
        position, then item.
        """
        context = als.context_
        seen = context.weights[user_rows] if exclude_seen else None
        found = np.full((len(user_rows), 2 * n), -1, dtype=np.int64)
        warm = np.flatnonzero(context.user_length[user_rows] > 0)
        if len(warm):
            columns, _ = als.factor_top_k(context, user_rows[warm], exclude_seen, n)
            found[warm, : columns.shape[1]] = columns
        found[:, n:] = _segment_top(context, segment_rows, seen, n)
        found.sort(axis=1)
        repeated = np.zeros(found.shape, dtype=bool)
        repeated[:, 1:] = found[:, 1:] == found[:, :-1]
        position, slot = np.nonzero((found >= 0) & ~repeated)
        item = found[position, slot]
        return (
            position.astype(np.int64),
            item,
            als.pair_scores(context, user_rows[position], item),
        )

    def _features(
        self,
        als: ALSRecommender,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        n: int,
        pair_features: PairFeatures = build_features,
    ) -> tuple[IntArray, IntArray, pd.DataFrame]:
        position, item, als_score = self._candidates(
            als, user_rows, segment_rows, exclude_seen, n
        )
        features = pair_features(
            als.context_, user_rows[position], segment_rows[position], item, als_score
        )
        return position, item, features

    def _examples(
        self,
        inner: ALSRecommender,
        future: pd.DataFrame,
        pair_features: PairFeatures = build_features,
    ) -> tuple[pd.DataFrame, IntArray, IntArray]:
        """Candidates of the users active after the inner cut, with labels."""
        context = inner.context_
        user_ids = sorted(future["user_id"].unique())
        rows_all = context.user_rows(user_ids)
        item = context.item_ids.get_indexer(future["item_id"])
        user = context.user_rows(future["user_id"].tolist())
        n_items = len(context.item_ids)
        positive = np.unique(user[item >= 0] * n_items + item[item >= 0])
        frames: list[pd.DataFrame] = []
        labels: list[IntArray] = []
        groups: list[IntArray] = []
        for start in range(0, len(user_ids), BLOCK):
            rows = rows_all[start : start + BLOCK]
            segments = context.user_segment[rows]
            position, cand, features = self._features(
                inner, rows, segments, True, self.n_candidates, pair_features
            )
            key = rows[position] * n_items + cand
            label = np.isin(key, positive)
            sizes = np.bincount(position, minlength=len(rows))
            hit = np.bincount(position, weights=label, minlength=len(rows)) > 0
            keep = hit[position]
            frames.append(features[keep])
            labels.append(label[keep].astype(np.int64))
            groups.append(sizes[hit])
        return (
            pd.concat(frames, ignore_index=True),
            np.concatenate(labels),
            np.concatenate(groups),
        )

    def _score_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> FloatArray:
        n = max(self.n_candidates, k)
        position, item, features = self._features(
            self.als_, user_rows, segment_rows, exclude_seen, n
        )
        scores = np.full((len(user_rows), len(context.item_ids)), -np.inf)
        if len(position):
            scores[position, item] = self.ranker_.booster_.predict(
                features.to_numpy(dtype=np.float64), num_threads=1
            )
        return scores

    def _top_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> tuple[IntArray, FloatArray]:
        """Rerank every (user, candidate) row of the block at once, keep k each."""
        n = max(self.n_candidates, k)
        position, item, features = self._features(
            self.als_, user_rows, segment_rows, exclude_seen, n
        )
        columns = np.full((len(user_rows), k), -1, dtype=np.int64)
        values = np.full((len(user_rows), k), -np.inf)
        if not len(position):
            return columns, values
        score = np.asarray(
            self.ranker_.booster_.predict(
                features.to_numpy(dtype=np.float64), num_threads=1
            ),
            dtype=np.float64,
        )
        # Per user: best score first, ties by item column (as scoring.top_k).
        order = np.lexsort((item, -score, position))
        position, item, score = position[order], item[order], score[order]
        first = np.searchsorted(position, np.arange(len(user_rows)))
        rank = np.arange(len(position)) - first[position]
        keep = rank < k
        columns[position[keep], rank[keep]] = item[keep]
        values[position[keep], rank[keep]] = score[keep]
        return columns, values


def _segment_top(
    context: FeatureContext,
    segment_rows: IntArray,
    seen: sp.csr_matrix | None,
    n: int,
) -> IntArray:
    """Each user's ``n`` most popular available items of their segment.

    Each segment's ranking is sorted once (ties by item column); a user's list
    is its first ``n`` items not in ``seen`` (the block's rows), -1 padded.
    """
    n_users, n_items = len(segment_rows), len(context.item_ids)
    popularity = np.where(context.item_available, context.segment_popularity, -np.inf)
    extra = 0 if seen is None else int(np.diff(seen.indptr).max(initial=0))
    segments, inverse = np.unique(segment_rows, return_inverse=True)
    # Ties (often: nobody in the segment took it recently) go to the more
    # popular item overall, then to the lower column, as in SegmentPopularity.
    overall = np.broadcast_to(context.segment_popularity[-1], (len(segments), n_items))
    ranked = np.lexsort((-overall, -popularity[segments]), axis=1)[:, : n + extra]
    ranked[np.take_along_axis(popularity[segments], ranked, axis=1) == -np.inf] = -1
    found = ranked[inverse.ravel()]
    valid = found >= 0
    if seen is not None and seen.nnz:
        pairs = seen.tocoo()
        keys = pairs.row.astype(np.int64) * n_items + pairs.col
        asked = np.arange(n_users, dtype=np.int64)[:, None] * n_items + found
        valid &= ~np.isin(asked, keys)
    rank = np.cumsum(valid, axis=1) - 1
    keep = valid & (rank < n)
    out = np.full((n_users, n), -1, dtype=np.int64)
    out[np.nonzero(keep)[0], rank[keep]] = found[keep]
    return out
