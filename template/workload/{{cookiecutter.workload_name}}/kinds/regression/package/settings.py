"""Settings of the {{ cookiecutter.workload_name }} workload: data size, holdout, model.

They live in the profile under ``workloads.<workload>:``
(``configs/<profile>.yaml``), and every field can be set from the
environment, e.g.::

    {{ cookiecutter.__env_prefix }}N_ROWS=2000
    {{ cookiecutter.__env_prefix }}N_ESTIMATORS=50

loopml validates them with this class (a bad value is an error naming the
field); the workload reads them with ``<Class>Settings.of(settings)``.
"""

from __future__ import annotations

from typing import ClassVar, Self

from loopml.sdk.settings import WorkloadSettings
from pydantic import Field, model_validator


class {{ cookiecutter.__class_name }}Settings(WorkloadSettings):
    """Generated data size, holdout length, daily checks and LightGBM parameters."""

    section_name: ClassVar[str] = "{{ cookiecutter.workload_name }}"

    n_rows: int = Field(6000, ge=100)
    n_days: int = Field(180, ge=14)
    start: str = "2025-01-01"
    #: the last ``holdout_days`` days are the evaluation period.
    holdout_days: int = Field(28, ge=1)
    #: the baseline's distance bands (quantiles of the training data).
    n_bands: int = Field(5, ge=1)
    n_estimators: int = Field(200, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(31, ge=2)
    #: a daily batch with fewer / more rows than these multiples of the
    #: previous validated batch's rows per day is refused by ``validate``.
    min_rows_ratio: float = Field(0.5, gt=0, le=1)
    max_rows_ratio: float = Field(2.0, ge=1)

    @model_validator(mode="after")
    def _holdout_inside(self) -> Self:
        if self.holdout_days >= self.n_days:
            raise ValueError("holdout_days must be shorter than n_days")
        return self
