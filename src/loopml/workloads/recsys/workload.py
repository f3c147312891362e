"""The course-recommendation workload, as the platform's stages see it.

The raw table is the flat event log of ``RecsysData.to_frame`` (one row per
interaction with user and item attributes); every step splits it back into
the three tables. The bar to beat is the rule-based service
(``segment_popularity``); the production model is the two-stage ranker.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

import pandas as pd
from pydantic import BaseModel, Field, model_validator

from loopml.workloads.base import EvalOutput, TrainOutput, Workload
from loopml.workloads.recsys.data import load
from loopml.workloads.recsys.evaluate import evaluate_recommender, time_split
from loopml.workloads.recsys.models import (
    ALSRecommender,
    GlobalPopularity,
    Recommender,
    SegmentPopularity,
    TwoStageRanker,
)
from loopml.workloads.recsys.plots import metrics_at_k_plot, slice_plot, slice_table
from loopml.workloads.recsys.pyfunc import RecsysModel
from loopml.workloads.recsys.schema import validate_raw
from loopml.workloads.recsys.tables import RecsysData

if TYPE_CHECKING:
    from loopml.config import Settings

log = logging.getLogger(__name__)

DEFAULT_ONLINE_RETAIL = Path("../shared/datasets/online_retail/online_retail.parquet")
# Reason templates per dataset: (history, segment) for RecsysModel.
_REASONS = {
    "generated": ("because you took {title}", "popular with {segment}s"),
    "online-retail": ("because you bought {title}", "popular in {segment}"),
    "movielens": ("because you rated {title}", "popular with {segment}s"),
}


class RecsysSettings(BaseModel):
    """The recommendation workload: data source, size, evaluation and models."""

    dataset: Literal["generated", "online-retail", "movielens"] = "generated"
    data_path: Path | None = None
    n_users: int = Field(600, ge=1)
    n_items: int = Field(120, ge=1)
    n_days: int = Field(240, ge=30)
    start: str = "2025-01-01"
    min_user_items: int = Field(5, ge=1)
    top_items: int = Field(1000, ge=1)
    k: int = Field(10, ge=1, le=100)
    test_days: int = Field(28, ge=1)
    cold_threshold: int = Field(3, ge=1)
    window_days: int = Field(90, ge=1)
    label_days: int = Field(28, ge=1)
    label_windows: int = Field(2, ge=1)
    als_factors: int = Field(32, ge=1)
    als_iterations: int = Field(15, ge=1)
    als_regularization: float = Field(10.0, ge=0)
    als_alpha: float = Field(1.0, gt=0)
    ranker_n_estimators: int = Field(200, ge=1)
    ranker_learning_rate: float = Field(0.05, gt=0)
    ranker_n_jobs: int = Field(1, ge=1)
    n_candidates: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _long_enough(self) -> Self:
        needed = self.test_days + self.label_windows * self.label_days
        if self.dataset == "generated" and self.n_days <= needed:
            raise ValueError(
                f"recsys.n_days must exceed test_days + label_windows x label_days"
                f" = {needed}, so the ranker has history, inner labels and a test"
                " period"
            )
        return self


def recsys_settings(settings: Settings) -> RecsysSettings:
    """The recsys section of the settings (defaults until config has one)."""
    cfg: RecsysSettings = getattr(settings, "recsys", RecsysSettings())
    return cfg


def _ranker(cfg: RecsysSettings, seed: int) -> TwoStageRanker:
    return TwoStageRanker(
        n_candidates=cfg.n_candidates,
        n_estimators=cfg.ranker_n_estimators,
        learning_rate=cfg.ranker_learning_rate,
        label_days=cfg.label_days,
        n_windows=cfg.label_windows,
        factors=cfg.als_factors,
        iterations=cfg.als_iterations,
        regularization=cfg.als_regularization,
        alpha=cfg.als_alpha,
        window_days=cfg.window_days,
        seed=seed,
        n_jobs=cfg.ranker_n_jobs,
    )


def _models(cfg: RecsysSettings, seed: int) -> dict[str, Recommender]:
    """The production model first, then the baseline and the references."""
    return {
        "ranker": _ranker(cfg, seed),
        "baseline": SegmentPopularity(window_days=cfg.window_days),
        "als": ALSRecommender(
            factors=cfg.als_factors,
            iterations=cfg.als_iterations,
            regularization=cfg.als_regularization,
            alpha=cfg.als_alpha,
            window_days=cfg.window_days,
            seed=seed,
        ),
        "global_popularity": GlobalPopularity(window_days=cfg.window_days),
    }


class RecsysWorkload(Workload):
    """Next courses for each employee, ranked; beats "popular in your role"?"""

    name = "recsys"
    primary_metric = "ndcg_at_10"
    higher_is_better = True
    key_metrics = (
        "ndcg_at_10",
        "baseline_ndcg_at_10",
        "recall_at_10",
        "baseline_recall_at_10",
        "coverage",
    )

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
            min_user_items=cfg.min_user_items,
            top_items=cfg.top_items,
        )
        return data.to_frame()

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Run the event-log and table schemas (raises ``DataValidationError``)."""
        return validate_raw(raw)

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit the two-stage ranker on every interaction."""
        cfg = recsys_settings(settings)
        tables = RecsysData.from_frame(data)
        model = _ranker(cfg, settings.seed).fit(tables)
        history_reason, segment_reason = _REASONS[cfg.dataset]
        wrapped = RecsysModel(
            model,
            tables,
            k=cfg.k,
            history_reason=history_reason,
            segment_reason=segment_reason,
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
            "last_interaction": str(tables.interactions["timestamp"].max()),
            **{f"ranker_{k}": v for k, v in model.get_params().items()},
        }
        return TrainOutput(wrapped, params, example)

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Time-split evaluation of the ranker, the baseline and references.

        Metrics: the ranker's, ``baseline_<metric>`` for segment popularity,
        and ``als_``/``global_popularity_`` prefixed ones for reference.
        """
        cfg = recsys_settings(settings)
        tables = RecsysData.from_frame(data)
        train, test = time_split(tables.interactions, cfg.test_days)
        train_data = tables.with_interactions(train)
        # 10 always: the primary metric is ndcg_at_10 whatever k is served.
        k_values = sorted({5, 10, 20, cfg.k})
        results: dict[str, dict[str, float]] = {}
        for name, model in _models(cfg, settings.seed).items():
            model.fit(train_data)
            results[name] = evaluate_recommender(
                model,
                train,
                test,
                tables.users,
                k_values=k_values,
                cold_threshold=cfg.cold_threshold,
                slice_k=cfg.k,
            )
            log.info("%s: ndcg@%d=%.4f", name, cfg.k, results[name][f"ndcg_at_{cfg.k}"])
        metrics = dict(results["ranker"])
        for name in ("baseline", "als", "global_popularity"):
            # Slices of the reference models would only clutter the run.
            metrics.update(
                {
                    f"{name}_{key}": value
                    for key, value in results[name].items()
                    if not key.startswith("n_")
                    and (name == "baseline" or "_segment_" not in key)
                }
            )
        slices = slice_table(results, cfg.k)
        return EvalOutput(
            metrics=metrics,
            figures={
                "metrics_at_k": metrics_at_k_plot(results),
                "ndcg_by_segment": slice_plot(slices, cfg.k),
            },
            tables={"ndcg_by_segment": slices},
        )
