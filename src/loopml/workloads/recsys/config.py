"""Settings of the recsys workload (``workloads.recsys`` in the profile)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from loopml.sdk.settings import WorkloadSettings


class RecsysSettings(WorkloadSettings):
    """The recommendation workload: data source, size, evaluation and models."""

    section_name: ClassVar[str] = "recsys"

    dataset: Literal["generated", "online-retail", "movielens"] = "generated"
    data_path: Path | None = None
    n_users: int = Field(600, ge=1)
    n_items: int = Field(120, ge=1)
    n_days: int = Field(240, ge=30)
    start: str = "2025-01-01"
    #: generated: Zipf exponent of course popularity (0: none; 1.0: the top
    #: 20 % of courses get about 80 % of enrolments, docs/scale.md).
    popularity_tail: float = Field(0.0, ge=0.0)
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
    #: leaves per ranker tree and rows per leaf: small trees, since the
    #: training groups are a few hundred to a few thousand users.
    ranker_num_leaves: int = Field(7, ge=2)
    ranker_min_child_samples: int = Field(100, ge=1)
    #: last items per user used as labels by the ranker's inner
    #: leave-last-out split (0: label windows only).
    ranker_n_last_out: int = Field(3, ge=0)
    #: non-taken candidates kept per user when training the ranker.
    ranker_max_negatives: int = Field(50, ge=1)
    #: user folds for early stopping and cold-user routing (< 2: all trees,
    #: no routing).
    ranker_n_folds: int = Field(2, ge=1)
    #: rounds without a better validation NDCG@10 before boosting stops.
    ranker_early_stopping_rounds: int = Field(20, ge=1)
    #: items held out per user by the leave-last-out evaluation protocol.
    lolo_n_last: int = Field(1, ge=1)
    n_candidates: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _long_enough(self) -> Self:
        needed = self.test_days + self.label_windows * self.label_days
        if self.dataset == "generated" and self.n_days <= needed:
            raise ValueError(
                f"n_days must exceed test_days + label_windows x label_days"
                f" = {needed}, so the ranker has history, inner labels and a test"
                " period"
            )
        return self
