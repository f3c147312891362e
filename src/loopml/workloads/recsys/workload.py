"""The course-recommendation workload, as the platform's stages see it.

The raw table is the flat event log of ``RecsysData.to_frame`` (one row per
interaction with user and item attributes); every step splits it back into
the three tables. The bar to beat is the rule-based service
(``segment_popularity``); the production model is the two-stage ranker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from loopml.sdk.batch import BatchSpec, DailyBatch
from loopml.sdk.capabilities import (
    BatchScorer,
    DaySource,
    FeatureViews,
    Monitor,
    OnlineScorer,
)
from loopml.sdk.workload import EvalOutput, TrainOutput, Workload
from loopml.workloads.recsys import holdout, tuning
from loopml.workloads.recsys.config import RecsysSettings
from loopml.workloads.recsys.data import load
from loopml.workloads.recsys.evaluate import evaluate_protocols, time_split
from loopml.workloads.recsys.feature_views import RecsysFeatureViews
from loopml.workloads.recsys.features import PairFeatures
from loopml.workloads.recsys.models import (
    ALSRecommender,
    GlobalPopularity,
    Recommender,
    SegmentPopularity,
    TwoStageRanker,
)
from loopml.workloads.recsys.schema import validate_batch, validate_raw
from loopml.workloads.recsys.tables import RecsysData

if TYPE_CHECKING:
    from loopml.core.config import Settings
    from loopml.sdk.tuning import Report, SearchParam

log = logging.getLogger(__name__)

DEFAULT_ONLINE_RETAIL = Path("../shared/datasets/online_retail/online_retail.parquet")
# Reason templates per dataset: (history, segment) for RecsysModel.
_REASONS = {
    "generated": ("because you took {title}", "popular with {segment}s"),
    "online-retail": ("because you bought {title}", "popular in {segment}"),
    "movielens": ("because you rated {title}", "popular with {segment}s"),
}


def recsys_settings(settings: Settings) -> RecsysSettings:
    """The recsys section of the settings (``workloads.recsys``)."""
    return RecsysSettings.of(settings)


def _ranker(cfg: RecsysSettings, seed: int) -> TwoStageRanker:
    return TwoStageRanker(
        n_candidates=cfg.n_candidates,
        n_estimators=cfg.ranker_n_estimators,
        learning_rate=cfg.ranker_learning_rate,
        num_leaves=cfg.ranker_num_leaves,
        min_child_samples=cfg.ranker_min_child_samples,
        n_last_out=cfg.ranker_n_last_out,
        max_negatives=cfg.ranker_max_negatives,
        n_folds=cfg.ranker_n_folds,
        early_stopping_rounds=cfg.ranker_early_stopping_rounds,
        label_days=cfg.label_days,
        n_windows=cfg.label_windows,
        factors=cfg.als_factors,
        iterations=cfg.als_iterations,
        regularization=cfg.als_regularization,
        alpha=cfg.als_alpha,
        window_days=cfg.window_days,
        cold_threshold=cfg.cold_threshold,
        seed=seed,
        n_jobs=cfg.ranker_n_jobs,
    )


def _baselines(cfg: RecsysSettings, seed: int) -> dict[str, Recommender]:
    """The simple alternatives the ranker must beat (the gate's baselines)."""
    return {
        "segment_popularity": SegmentPopularity(window_days=cfg.window_days),
        "global_popularity": GlobalPopularity(window_days=cfg.window_days),
        "als": ALSRecommender(
            factors=cfg.als_factors,
            iterations=cfg.als_iterations,
            regularization=cfg.als_regularization,
            alpha=cfg.als_alpha,
            window_days=cfg.window_days,
            seed=seed,
        ),
    }


def _models(cfg: RecsysSettings, seed: int) -> dict[str, Recommender]:
    """The production model first, then the baselines."""
    return {"ranker": _ranker(cfg, seed), **_baselines(cfg, seed)}


class RecsysWorkload(Workload):
    """Next courses for each employee, ranked; beats "popular in your role"?"""

    name = "recsys"
    settings_class = RecsysSettings
    stage_params: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "ingest": (
            "dataset",
            "data_path",
            "n_users",
            "n_items",
            "n_days",
            "start",
            "min_user_items",
            "top_items",
        ),
        "features": ("window_days",),
        "train": (
            "k",
            "test_days",
            "window_days",
            "label_days",
            "label_windows",
            "als_factors",
            "als_iterations",
            "als_regularization",
            "als_alpha",
            "ranker_n_estimators",
            "ranker_learning_rate",
            "ranker_n_jobs",
            "ranker_num_leaves",
            "ranker_min_child_samples",
            "ranker_n_last_out",
            "ranker_max_negatives",
            "ranker_n_folds",
            "ranker_early_stopping_rounds",
            "n_candidates",
        ),
        "evaluate": (
            "k",
            "test_days",
            "cold_threshold",
            "window_days",
            "label_days",
            "label_windows",
            "als_factors",
            "als_iterations",
            "als_regularization",
            "als_alpha",
            "ranker_n_estimators",
            "ranker_learning_rate",
            "ranker_num_leaves",
            "ranker_min_child_samples",
            "ranker_n_last_out",
            "ranker_max_negatives",
            "ranker_n_folds",
            "ranker_early_stopping_rounds",
            "n_candidates",
            "lolo_n_last",
        ),
        "promote": ("k", "test_days"),
    }
    primary_metric = "ndcg_at_10"
    higher_is_better = True
    key_metrics = (
        "ndcg_at_10",
        "baseline_ndcg_at_10",
        "recall_at_10",
        "baseline_recall_at_10",
        "coverage",
    )
    batch_spec = BatchSpec(
        time_column="timestamp",
        sort_columns=("timestamp", "user_id", "item_id", "event"),
    )

    def feature_views(self) -> FeatureViews:
        """Profiles, history, popularity and today's interactions."""
        return RecsysFeatureViews()

    def batch_scorer(self) -> BatchScorer:
        """Every user's top-k, table ``recommendations`` (``recsys/batch.py``)."""
        from loopml.workloads.recsys.batch import RecsysBatchScorer

        return RecsysBatchScorer()

    def monitor(self) -> Monitor:
        """The interaction mix and quality (``recsys/monitoring.py``)."""
        from loopml.workloads.recsys.monitoring import RecsysMonitor

        return RecsysMonitor()

    def load_day(self, settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
        """One day's interactions (``loopml ingest --date``, the daily DAG).

        The generated platform goes on after its history (same employees and
        courses); a real dataset has no days after its end.

        Raises:
            ValueError: for a real dataset.
        """
        return self.day_source().days(settings, pd.Timestamp(day), 1)

    def day_source(self) -> DaySource:
        """The generated platform after the history, for replay (``replay.py``)."""
        from loopml.workloads.recsys.replay import RecsysDaySource

        return RecsysDaySource()

    def online_scorer(self) -> OnlineScorer:
        """Recommendations online (``RecsysScorer``): the day's batch, else live."""
        from loopml.workloads.recsys.serving import RecsysScorer

        return RecsysScorer()

    def models(self) -> Mapping[str, Callable[[], Any]]:
        """The ranker, ALS and the popularity baselines."""
        from loopml.workloads.recsys.models import MODELS

        return MODELS

    baselines = ("segment_popularity", "global_popularity", "als")
    guard_metrics: ClassVar[dict[str, bool]] = {"coverage": True}
    slice_prefix = holdout.SEGMENT_PREFIX
    slice_size_prefix = holdout.SEGMENT_SIZE_PREFIX
    group_prefix = holdout.GROUP_PREFIX
    group_size_prefix = holdout.GROUP_SIZE_PREFIX
    intended_use = (
        "A daily list of learning courses per employee, ranked for their job "
        "role, seniority and history, shown with a short reason; the employee "
        "chooses. Replaces the rule 'most popular in your role'."
    )
    limitations = (
        "Learns from past enrolments, so it repeats what people already take "
        "(popularity feedback) and knows nothing of a course until someone "
        "enrols; new employees get their role's popular courses. Not for "
        "mandatory training or decisions about people."
    )

    def holdout_metrics(
        self, settings: Settings, data: pd.DataFrame, models: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        """Ranking metrics, coverage and NDCG@10 per segment, last test_days."""
        cfg = recsys_settings(settings)
        return holdout.holdout_metrics(
            cfg, data, models, _baselines(cfg, settings.seed)
        )

    def check_model(
        self, settings: Settings, model: Any, example: pd.DataFrame | None
    ) -> list[str]:
        """Recommendations for the input example: k distinct, finite items."""
        if example is None:
            return ["the model has no input example to check"]
        answer = model.predict(None, example)
        k = int(example["k"].max()) if "k" in example.columns else model.k
        return holdout.check_recommendations(answer, k)

    def load_raw(self, settings: Settings) -> pd.DataFrame:
        """Generate the learning platform or load a real dataset, flattened."""
        cfg = recsys_settings(settings)
        data_path = cfg.data_path
        if cfg.dataset == "online-retail" and data_path is None:
            data_path = DEFAULT_ONLINE_RETAIL
        data = load(
            cfg.dataset,
            data_path,
            n_users=cfg.n_users,
            n_items=cfg.n_items,
            n_days=cfg.n_days,
            start=cfg.start,
            seed=settings.seed,
            popularity_tail=cfg.popularity_tail,
            min_user_items=cfg.min_user_items,
            top_items=cfg.top_items,
            test_days=cfg.test_days,
        )
        return data.to_frame()

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Run the event-log and table schemas (raises ``DataValidationError``)."""
        return validate_raw(raw)

    def validate_batch(
        self, settings: Settings, raw: pd.DataFrame, batch: DailyBatch
    ) -> pd.DataFrame:
        """The schemas, then each new day holds events."""
        return validate_batch(raw, batch.days)

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit the two-stage ranker on the interactions before the holdout.

        The ranker's training pairs get their features from Feast by
        point-in-time joins at each inner cutoff (``loopml features`` must
        have published ``data``); the values equal ``build_features``'s
        (tests/integration/test_recsys_feature_store.py), which evaluation,
        tuning and scoring keep using in memory.
        """
        from loopml.sdk.feast import open_store
        from loopml.workloads.recsys.ranking_features import RankingFeatures

        features = RankingFeatures(
            open_store(settings), RecsysSettings.of(settings).window_days
        )
        return self.train_with_features(settings, data, features)

    def train_with_features(
        self, settings: Settings, data: pd.DataFrame, pair_features: PairFeatures
    ) -> TrainOutput:
        """:meth:`train` with another source of the ranker's pair features.

        Args:
            settings: the active settings.
            data: the validated event log.
            pair_features: e.g. ``features.build_features`` (plain code, no
                store), which gives the same values as Feast.
        """
        cfg = recsys_settings(settings)
        tables = RecsysData.from_frame(data)
        # Fit before the gate's holdout (the last test_days); what users took
        # since is still excluded from their recommendations.
        before, recent = time_split(tables.interactions, cfg.test_days)
        model = _ranker(cfg, settings.seed).fit(
            tables.with_interactions(before), pair_features=pair_features
        )
        # Here, not at the top: MLflow is for train, not for every command.
        from loopml.workloads.recsys.pyfunc import RecsysModel

        history_reason, segment_reason = _REASONS[cfg.dataset]
        wrapped = RecsysModel(
            model,
            tables,
            k=cfg.k,
            history_reason=history_reason,
            segment_reason=segment_reason,
            recent=recent,
        )
        # Typical users: the heaviest ones may have exhausted the catalogue.
        activity = tables.interactions["user_id"].value_counts(ascending=True)
        middle = len(activity) // 2
        typical = sorted(activity.index[middle : middle + 2].astype(str))
        example = pd.DataFrame({"user_id": typical, "k": [cfg.k] * len(typical)})
        params: dict[str, object] = {
            "model": "two_stage_ranker",
            "dataset": cfg.dataset,
            "k": cfg.k,
            "seed": settings.seed,
            "n_users": len(tables.users),
            "n_items": len(tables.items),
            "n_interactions": len(tables.interactions),
            "n_training_interactions": len(before),
            "train_until": str(before["timestamp"].max()),
            "last_interaction": str(tables.interactions["timestamp"].max()),
            **{f"ranker_{k}": v for k, v in model.get_params().items()},
        }
        return TrainOutput(wrapped, params, example)

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Evaluation of the ranker and every baseline, two protocols.

        Metrics: the ranker's, ``<baseline>_<metric>`` for each of
        :attr:`baselines` (segment slices for none: they would clutter the
        run) and ``baseline_<metric>`` for the strongest on NDCG@10, slices
        included; the global time cut's as before, the leave-last-out's after
        ``lolo_`` (``evaluate.evaluate_protocols``). NDCG per age band and
        the gap between the bands (``group_...``) are in the metrics and in
        the table ``ndcg_by_group`` (every model, both protocols).
        """
        cfg = recsys_settings(settings)
        tables = RecsysData.from_frame(data)
        # 10 always: the primary metric is ndcg_at_10 whatever k is served.
        k_values = sorted({5, 10, 20, cfg.k})
        results = evaluate_protocols(
            _models(cfg, settings.seed),
            tables,
            cfg.test_days,
            n_last=cfg.lolo_n_last,
            k_values=k_values,
            cold_threshold=cfg.cold_threshold,
            slice_k=cfg.k,
        )
        metrics = dict(results["ranker"])
        for name in self.baselines:
            metrics.update(
                {
                    f"{name}_{key}": value
                    for key, value in results[name].items()
                    if not key.startswith("n_") and "_segment_" not in key
                }
            )
        best = max(self.baselines, key=lambda name: results[name][self.primary_metric])
        metrics.update(
            {
                f"baseline_{key}": value
                for key, value in results[best].items()
                if not key.startswith("n_")
            }
        )
        # Here, not at the top: matplotlib is for evaluate only.
        from loopml.workloads.recsys.plots import (
            group_table,
            metrics_at_k_plot,
            slice_plot,
            slice_table,
        )

        shown = {**results, "baseline": results[best]}
        slices = slice_table(shown, cfg.k)
        return EvalOutput(
            metrics=metrics,
            figures={
                "metrics_at_k": metrics_at_k_plot(shown),
                "ndcg_by_segment": slice_plot(slices, cfg.k),
            },
            tables={"ndcg_by_segment": slices, "ndcg_by_group": group_table(results)},
        )

    def search_space(self, settings: Settings) -> dict[str, SearchParam]:
        """The ranker's size and rate, ALS's factors and penalty."""
        return dict(tuning.SEARCH_SPACE)

    def with_params(self, settings: Settings, params: Mapping[str, Any]) -> Settings:
        """Settings whose ``recsys`` section takes ``params``."""
        return tuning.with_params(settings, params)

    def current_params(self, settings: Settings) -> dict[str, Any]:
        """The ``recsys`` section's values of the search space's parameters."""
        cfg = recsys_settings(settings)
        return {name: getattr(cfg, name) for name in tuning.SEARCH_SPACE}

    def tune_objective(
        self,
        settings: Settings,
        data: pd.DataFrame,
        params: Mapping[str, Any],
        report: Report | None = None,
    ) -> float:
        """NDCG@10 of the ranker with ``params`` before the test period."""
        tuned = self.with_params(settings, params)
        cfg = recsys_settings(tuned)
        return tuning.objective(tuned, data, lambda: _ranker(cfg, tuned.seed), report)
