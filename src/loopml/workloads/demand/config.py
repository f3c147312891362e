"""Settings of the demand workload (``workloads.demand`` in the profile)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from loopml.sdk.settings import WorkloadSettings


class DemandModelSettings(BaseModel):
    """Hyper-parameters of the LightGBM forecaster."""

    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(20, ge=1)


class DemandSettings(WorkloadSettings):
    """The demand-forecasting workload: data source, size and evaluation."""

    section_name: ClassVar[str] = "demand"

    dataset: Literal["generated", "online-retail", "bike-sharing"] = "generated"
    data_path: Path | None = None
    n_stores: int = Field(3, ge=1)
    n_items: int = Field(10, ge=1)
    n_days: int = Field(730, ge=120)
    #: the generated data's first day (YYYY-MM-DD)
    start: str = Field("2024-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    top_n_items: int = Field(50, ge=1)
    horizon: int = Field(28, ge=1, le=90)
    n_folds: int = Field(3, ge=1)
    fold_step: int = Field(28, ge=1)
    origin_step: int = Field(7, ge=1)
    #: a daily batch with fewer / more rows per day than these multiples of the
    #: previous validated batch's rows per day is refused by ``validate``.
    min_rows_ratio: float = Field(0.5, gt=0, le=1)
    max_rows_ratio: float = Field(2.0, ge=1)
    model: DemandModelSettings = DemandModelSettings()

    @field_validator("start")
    @classmethod
    def _a_real_day(cls, value: str) -> str:
        dt.date.fromisoformat(value)  # a ValueError (2025-02-30) names the field
        return value
