"""Two-stage recommender: ALS + popular candidates, LambdaRank ranker.

Stage 1 proposes, per user, the ALS top ``n_candidates`` united with the
segment's and everyone's most popular ``n_candidates`` (users without history
get only the latter). Stage 2 orders them with a LightGBM LambdaRank model on
the features of ``features.py`` (the pair features, the ALS score and the
user's own moment, ``TIME_COLUMNS``).

The ranker learns from splits inside the training data, so features never see
their labels, in the two shapes the recommender is judged on:

* **time windows**: for each of ``n_windows`` consecutive ``label_days``
  windows at the end, stage 1 and the features come from the history before
  the window and the labels from the window (what users do next, from now);
* **leave-last-out**: each user's last ``n_last_out`` items are the labels
  and everything else is the history (what a user does next, from their own
  last visit, a moment the time windows rarely show for idle users).

The users are split into ``n_folds`` folds, each held out once from a ranker
trained on the others: early stopping on the held-out fold chooses the number
of trees, and the held-out scores choose, per cold slice, the model that
answers users with little history (``routing.py``); the final ranker is then
fitted on every user.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.sdk.trees import TreePredictor
from loopml.workloads.recsys.features import (
    FEATURE_COLUMNS,
    TIME_COLUMNS,
    FeatureContext,
    PairFeatures,
    build_features,
    pair_matrix,
    time_features,
    time_matrix,
)
from loopml.workloads.recsys.models.als import ALSRecommender
from loopml.workloads.recsys.models.base import (
    BLOCK,
    FloatArray,
    IntArray,
    RecommenderBase,
    canonical_interactions,
)
from loopml.workloads.recsys.models.candidates import als_margin, candidates
from loopml.workloads.recsys.models.global_popularity import global_scores
from loopml.workloads.recsys.models.routing import (
    GLOBAL,
    RANKER,
    SEGMENT,
    choose_routes,
    cold_slice,
)
from loopml.workloads.recsys.models.segment_popularity import segment_scores
from loopml.workloads.recsys.splits import leave_last_out_split
from loopml.workloads.recsys.tables import RecsysData

if TYPE_CHECKING:
    from lightgbm import LGBMRanker

log = logging.getLogger(__name__)

#: One inner split: history, labels, and whether its cut is one moment for
#: every user (then the pair features may come from a point-in-time reader).
InnerSplit = tuple[pd.DataFrame, pd.DataFrame, bool]
#: Training examples: blocks of feature rows (:data:`RANKING_COLUMNS`, one
#: float64 matrix per block of users), labels, group sizes, ALS margins (see
#: :func:`als_margin`) and each group's user.
Examples = tuple[list[FloatArray], IntArray, IntArray, FloatArray, list[str]]
#: The ranker's columns: the pair features, then the user's moment.
RANKING_COLUMNS: list[str] = [*FEATURE_COLUMNS, *TIME_COLUMNS]
BoolArray = npt.NDArray[np.bool_]
# The NDCG cut-off of early stopping and routing: the gate's k.
_K = 10
#: Training pairs whose features are read in one call (about 90 MB of
#: float64 columns). A point-in-time reader runs a few Feast queries per
#: call, so at 100,000 users a call per BLOCK of users was hundreds of
#: queries per label window.
PAIRS_PER_READ = 500_000


class TwoStageRanker(RecommenderBase):
    """ALS and popular candidates re-ranked by LightGBM LambdaRank."""

    def __init__(
        self,
        n_candidates: int = 100,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        label_days: int = 28,
        n_windows: int = 2,
        n_last_out: int = 3,
        max_negatives: int = 50,
        n_folds: int = 2,
        early_stopping_rounds: int = 20,
        cold_threshold: int = 3,
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
            n_estimators: most boosting rounds of the ranker (early stopping
                may keep fewer).
            learning_rate: shrinkage of the ranker.
            num_leaves: leaves per tree; small trees, because the training
                groups are a few hundred to a few thousand users.
            min_child_samples: minimum rows per leaf.
            label_days: length of each inner label window.
            n_windows: how many consecutive label windows (each with its own
                stage-1 fit on the history before it) train the ranker.
            n_last_out: items per user held out as labels of the inner
                leave-last-out split (0: no such split).
            max_negatives: candidates not taken kept per user in the
                training examples (a random sample; every taken one is kept).
            n_folds: folds of users cross-fitted to choose the number of
                trees and the cold routes (below 2: all trees, no routes).
            early_stopping_rounds: rounds without a better validation
                NDCG@10 before boosting stops.
            cold_threshold: users with fewer items are cold, served by the
                model their slice was routed to.
            factors: ALS latent dimensions.
            iterations: ALS sweeps.
            regularization: ALS L2 penalty.
            alpha: ALS confidence per unit of weight.
            window_days: the recent-popularity window.
            seed: seeds ALS, LightGBM and the validation users.
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
        self.n_last_out = n_last_out
        self.max_negatives = max_negatives
        self.n_folds = n_folds
        self.early_stopping_rounds = early_stopping_rounds
        self.cold_threshold = cold_threshold
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

    def _lambdarank(self, n_estimators: int) -> LGBMRanker:
        # Here, not at the top: LightGBM (and sklearn) is for fitting only.
        from lightgbm import LGBMRanker

        return LGBMRanker(
            objective="lambdarank",
            n_estimators=n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )

    def fit(
        self, data: RecsysData, pair_features: PairFeatures = build_features
    ) -> Self:
        """Train the ranker on inner splits, then refit stage 1 on everything.

        Args:
            data: users, items and the training interactions.
            pair_features: gathers the training pairs' features at each inner
                time cut; the plain-code :func:`build_features` by default,
                or the point-in-time reader of ``feature_store.ranking``
                (same values). The leave-last-out split cuts each user at
                their own moment, which no point-in-time join expresses, so
                its pairs, like scoring, use ``build_features``.

        Raises:
            ValueError: when the training window is too short to hold both a
                history and ``label_days`` of labels, or no candidate of the
                inner splits was ever taken.
        """
        interactions = canonical_interactions(data.interactions)
        parts = [
            self._examples(
                self._als().fit(data.with_interactions(history)),
                future,
                pair_features if same_cut else build_features,
            )
            for history, future, same_cut in self._inner_splits(interactions)
        ]
        labels = np.concatenate([p[1] for p in parts])
        if not labels.sum():
            raise ValueError("no candidate of the inner splits was ever taken")
        groups = np.concatenate([p[2] for p in parts])
        margin = np.concatenate([p[3] for p in parts])
        users = [user for p in parts for user in p[4]]
        blocks: list[FloatArray] = []
        for part in parts:
            blocks += part[0]
            part[0].clear()
        del parts
        features = _stack(blocks)
        n_trees = self._validate(features, labels, groups, margin, users)
        self.ranker_ = self._lambdarank(n_trees)
        self.ranker_.fit(
            features,
            labels,
            group=groups,
            init_score=margin,
            feature_name=RANKING_COLUMNS,
        )
        log.info(
            "ranker trained on %d candidates of %d groups (%d positives), "
            "%d trees; cold routes %s",
            len(labels),
            len(groups),
            int(labels.sum()),
            n_trees,
            self.routes_,
        )
        self.als_ = self._als().fit(data.with_interactions(interactions))
        self.context_ = self.als_.context_
        return self

    def _inner_splits(self, interactions: pd.DataFrame) -> list[InnerSplit]:
        """The label windows at the end, then the leave-last-out split."""
        end = interactions["timestamp"].max()
        splits: list[InnerSplit] = []
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
                splits.append((interactions[before], interactions[after], True))
        if self.n_last_out > 0:
            history, last = leave_last_out_split(interactions, self.n_last_out)
            if not last.empty:
                splits.append((history, last, False))
        return splits

    def _validate(
        self,
        features: FloatArray,
        labels: IntArray,
        groups: IntArray,
        margin: FloatArray,
        users: list[str],
    ) -> int:
        """Trees by early stopping and cold routes, cross-fitted over users.

        Each fold of users is held out once: a ranker trained on the other
        folds stops boosting when its NDCG@10 on the held-out fold stops
        improving, and scores that fold. Sets ``routes_`` (cold slice ->
        model, chosen on every fold's held-out scores) and ``validation_``
        (the routes' NDCG@10); returns the mean number of trees.
        """
        from lightgbm import early_stopping

        self.routes_: dict[str, str] = {}
        self.validation_: dict[str, dict[str, float]] = {}
        names = np.asarray(users, dtype=object)
        distinct = np.unique(names)
        if self.n_folds < 2 or len(distinct) < self.n_folds:
            return self.n_estimators
        rng = np.random.default_rng(self.seed)
        fold_of = dict(
            zip(distinct, rng.permutation(len(distinct)) % self.n_folds, strict=True)
        )
        fold = np.array([fold_of[user] for user in names])
        held_out = np.zeros(len(labels))
        trees = []
        for k in range(self.n_folds):
            valid = fold == k
            rows = np.repeat(valid, groups)
            held = features[rows]
            probe = self._lambdarank(self.n_estimators)
            probe.fit(
                features[~rows],
                labels[~rows],
                group=groups[~valid],
                init_score=margin[~rows],
                feature_name=RANKING_COLUMNS,
                eval_X=(held,),
                eval_y=(labels[rows],),
                eval_group=[groups[valid]],
                eval_init_score=[margin[rows]],
                eval_at=[_K],
                callbacks=[early_stopping(self.early_stopping_rounds, verbose=False)],
            )
            best = int(probe.best_iteration_ or self.n_estimators)
            trees.append(best)
            held_out[rows] = margin[rows] + probe.booster_.predict(
                held, num_iteration=best, num_threads=1
            )
            del held, probe
        self.routes_, self.validation_ = choose_routes(
            pd.DataFrame(features, columns=RANKING_COLUMNS, copy=False),
            labels,
            groups,
            held_out,
            self.cold_threshold,
            _K,
        )
        return max(round(float(np.mean(trees))), 1)

    def _features(
        self,
        als: ALSRecommender,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        n: int,
        pair_features: PairFeatures = build_features,
    ) -> tuple[IntArray, IntArray, pd.DataFrame]:
        position, item, als_score = candidates(
            als, user_rows, segment_rows, exclude_seen, n
        )
        context = als.context_
        pairs = pair_features(
            context, user_rows[position], segment_rows[position], item, als_score
        )
        moment = time_features(context, user_rows[position], item)
        features = pd.concat([pairs.reset_index(drop=True), moment], axis=1)
        return position, item, features

    def _matrix(
        self,
        als: ALSRecommender,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        n: int,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """:meth:`_features` of scoring, as one float matrix (no frame).

        Scoring always gathers with :func:`build_features`'s arithmetic, so
        the serving path skips the frames (``test_recsys_models`` checks the
        two equal).
        """
        position, item, als_score = candidates(
            als, user_rows, segment_rows, exclude_seen, n
        )
        context = als.context_
        users = user_rows[position]
        features = np.hstack(
            (
                pair_matrix(context, users, segment_rows[position], item, als_score),
                time_matrix(context, users, item),
            )
        )
        return position, item, features

    def _examples(
        self,
        inner: ALSRecommender,
        future: pd.DataFrame,
        pair_features: PairFeatures = build_features,
    ) -> Examples:
        """Candidates of the users with labels after the inner cut.

        Only users with a label among their candidates form a group. The
        candidates are found :data:`BLOCK` users at a time and sampled
        before any feature is read; the features of the kept pairs are read
        :data:`PAIRS_PER_READ` pairs at a time (a point-in-time reader runs
        a few queries per call, whatever their size). The features are per
        pair, so the rows equal those of reading every candidate per block
        and keeping the same ones (tested).
        """
        context = inner.context_
        user_ids = sorted(future["user_id"].unique())
        rows_all = context.user_rows(user_ids)
        item = context.item_ids.get_indexer(future["item_id"])
        user = context.user_rows(future["user_id"].tolist())
        n_items = len(context.item_ids)
        positive = np.unique(user[item >= 0] * n_items + item[item >= 0])
        frames: list[FloatArray] = []
        labels: list[IntArray] = []
        groups: list[IntArray] = []
        margins: list[FloatArray] = []
        users: list[str] = []
        waiting: list[tuple[IntArray, IntArray, IntArray, FloatArray]] = []
        rng = np.random.default_rng(self.seed)

        def read_waiting() -> None:
            if waiting:
                user_rows = np.concatenate([w[0] for w in waiting])
                segment_rows = np.concatenate([w[1] for w in waiting])
                items = np.concatenate([w[2] for w in waiting])
                scores = np.concatenate([w[3] for w in waiting])
                frames.append(
                    self._pair_rows(
                        context, user_rows, segment_rows, items, scores, pair_features
                    )
                )
                waiting.clear()

        pending = 0
        for start in range(0, len(user_ids), BLOCK):
            rows = rows_all[start : start + BLOCK]
            segments = context.user_segment[rows]
            position, cand, als_score = candidates(
                inner, rows, segments, True, self.n_candidates
            )
            key = rows[position] * n_items + cand
            label = np.isin(key, positive)
            hit = np.bincount(position, weights=label, minlength=len(rows)) > 0
            margin = als_margin(als_score, position, len(rows))
            keep = hit[position] & (label | self._sample_negatives(rng, position))
            waiting.append(
                (
                    rows[position[keep]],
                    segments[position[keep]],
                    cand[keep],
                    als_score[keep],
                )
            )
            pending += int(keep.sum())
            labels.append(label[keep].astype(np.int64))
            margins.append(margin[keep])
            groups.append(np.bincount(position[keep], minlength=len(rows))[hit])
            block = user_ids[start : start + BLOCK]
            users += [name for name, has in zip(block, hit, strict=True) if has]
            if pending >= PAIRS_PER_READ:
                read_waiting()
                pending = 0
        read_waiting()
        return (
            frames,
            np.concatenate(labels),
            np.concatenate(groups),
            np.concatenate(margins),
            users,
        )

    @staticmethod
    def _pair_rows(
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        items: IntArray,
        als_score: FloatArray,
        pair_features: PairFeatures,
    ) -> FloatArray:
        """The ranking columns of pairs: ``pair_features``, then the time ones."""
        pairs = pair_features(context, user_rows, segment_rows, items, als_score)
        moment = time_features(context, user_rows, items)
        features = pd.concat([pairs.reset_index(drop=True), moment], axis=1)
        out: FloatArray = features.to_numpy(dtype=np.float64)
        return out

    def _sample_negatives(
        self, rng: np.random.Generator, position: IntArray
    ) -> BoolArray:
        """At most ``max_negatives`` random candidates of each user, as a mask.

        Applied to the negatives only (every taken candidate is kept), it
        bounds the ranker's training rows per user.
        """
        noise = rng.random(len(position))
        order = np.lexsort((noise, position))
        first = np.searchsorted(position[order], position[order], side="left")
        rank = np.empty(len(position), dtype=np.int64)
        rank[order] = np.arange(len(position)) - first
        chosen: BoolArray = rank < self.max_negatives
        return chosen

    def compile_trees(self) -> bool:
        """Predict with the ranker's trees compiled (:mod:`loopml.sdk.trees`).

        For serving: one user's candidates cost 65-120 us through LightGBM,
        about 10 us compiled. Off with ``LOOPML_COMPILED_TREES=0``.

        Returns:
            Whether the trees are compiled now.
        """
        booster = self.ranker_.booster_
        predictor = TreePredictor(booster, compiled=True)
        _PREDICTORS[booster] = predictor
        return predictor.compiled

    def _rank(
        self, features: FloatArray, position: IntArray, n_users: int
    ) -> FloatArray:
        """The ranker's score of each candidate: ALS margin plus the trees.

        ``features`` is :meth:`_matrix`'s (``als_score`` is its first column).
        """
        margin = als_margin(features[:, 0], position, n_users)
        trees = _predict(self.ranker_.booster_, features)
        return margin + np.asarray(trees, dtype=np.float64)

    def _routes(
        self, context: FeatureContext, user_rows: IntArray
    ) -> npt.NDArray[np.str_]:
        """The model answering each user: the ranker, or their cold slice's route."""
        slices = cold_slice(context.user_length[user_rows], self.cold_threshold)
        if len(user_rows) == 1:  # a user served live
            return np.array([self.routes_.get(str(slices[0]), RANKER)])
        routes = np.full(len(user_rows), RANKER, dtype=object)
        for name, route in self.routes_.items():
            routes[slices == name] = route
        return routes.astype(str)

    def _score_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> FloatArray:
        """Popularity scores of routed users; the ranker's of its candidates."""
        routes = self._routes(context, user_rows)
        scores = np.full((len(user_rows), len(context.item_ids)), -np.inf)
        segment = routes == SEGMENT
        scores[segment] = segment_scores(context, segment_rows[segment])
        everyone = routes == GLOBAL
        scores[everyone] = global_scores(context, int(everyone.sum()))
        ranked = np.flatnonzero(routes == RANKER)
        position, item, features = self._matrix(
            self.als_,
            user_rows[ranked],
            segment_rows[ranked],
            exclude_seen,
            max(self.n_candidates, k),
        )
        if len(position):
            scores[ranked[position], item] = self._rank(features, position, len(ranked))
        return scores

    def _top_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> tuple[IntArray, FloatArray]:
        """Rerank every (user, candidate) row of the block at once, keep k each.

        Users routed to a popularity baseline get its top k instead.
        """
        routes = self._routes(context, user_rows)
        if len(user_rows) == 1 and routes[0] == RANKER:  # a user served live
            return self._top_one(user_rows, segment_rows, exclude_seen, k)
        columns = np.full((len(user_rows), k), -1, dtype=np.int64)
        values = np.full((len(user_rows), k), -np.inf)
        routed = np.flatnonzero(routes != RANKER)
        if len(routed):
            cols, vals = super()._top_block(
                context, user_rows[routed], segment_rows[routed], exclude_seen, k
            )
            columns[routed, : cols.shape[1]] = cols
            values[routed, : vals.shape[1]] = vals
        ranked = np.flatnonzero(routes == RANKER)
        position, item, features = self._matrix(
            self.als_,
            user_rows[ranked],
            segment_rows[ranked],
            exclude_seen,
            max(self.n_candidates, k),
        )
        if not len(position):
            return columns, values
        score = self._rank(features, position, len(ranked))
        # Per user: best score first, ties by item column (as scoring.top_k).
        order = np.lexsort((item, -score, position))
        position, item, score = position[order], item[order], score[order]
        first = np.searchsorted(position, np.arange(len(ranked)))
        rank = np.arange(len(position)) - first[position]
        keep = rank < k
        columns[ranked[position[keep]], rank[keep]] = item[keep]
        values[ranked[position[keep]], rank[keep]] = score[keep]
        return columns, values

    def _top_one(
        self, user_rows: IntArray, segment_rows: IntArray, exclude_seen: bool, k: int
    ) -> tuple[IntArray, FloatArray]:
        """:meth:`_top_block` of one user the ranker answers, without the
        bookkeeping of many (a test checks it against a block's row)."""
        columns = np.full((1, k), -1, dtype=np.int64)
        values = np.full((1, k), -np.inf)
        _, item, features = self._matrix(
            self.als_, user_rows, segment_rows, exclude_seen, max(self.n_candidates, k)
        )
        if not len(item):
            return columns, values
        score = self._rank(features, np.zeros(len(item), dtype=np.int64), 1)
        # Best score first, ties by item column (as scoring.top_k).
        best = np.lexsort((item, -score))[:k]
        columns[0, : len(best)] = item[best]
        values[0, : len(best)] = score[best]
        return columns, values


#: One kept predictor per booster (LightGBM's, or compiled trees once
#: :meth:`TwoStageRanker.compile_trees` asked for them).
_PREDICTORS: weakref.WeakKeyDictionary[Any, TreePredictor] = weakref.WeakKeyDictionary()


def _predict(booster: Any, features: FloatArray) -> FloatArray:
    """``booster.predict(features, num_threads=1)``, through a kept predictor."""
    predictor = _PREDICTORS.get(booster)
    if predictor is None:
        predictor = _PREDICTORS[booster] = TreePredictor(booster)
    return predictor(features)


def _stack(blocks: list[FloatArray]) -> FloatArray:
    """The blocks' rows as one C-ordered matrix, each block freed once copied.

    ``np.concatenate`` would hold the blocks and the result at once: twice
    the training matrix, the peak of a production-size fit.
    """
    n_columns = blocks[0].shape[1] if blocks else len(RANKING_COLUMNS)
    out: FloatArray = np.empty((sum(len(b) for b in blocks), n_columns))
    start = 0
    blocks.reverse()
    while blocks:
        block = blocks.pop()
        out[start : start + len(block)] = block
        start += len(block)
    return out
