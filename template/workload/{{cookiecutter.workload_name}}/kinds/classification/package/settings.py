"""Settings of the {{ cookiecutter.workload_name }} workload: data size, holdout, models.

They live in the profile under ``workloads.<workload>:``
(``configs/<profile>.yaml``), and every field can be set from the
environment, e.g.::

    {{ cookiecutter.__env_prefix }}N_ROWS=2000
    {{ cookiecutter.__env_prefix }}THRESHOLD=0.3

loopml validates them with this class (a bad value is an error naming the
field); the workload reads them with ``<Class>Settings.of(settings)``.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from loopml.sdk.settings import WorkloadSettings
from pydantic import Field, model_validator


class {{ cookiecutter.__class_name }}Settings(WorkloadSettings):
    """Generated data size, holdout, calibration, threshold and model parameters."""

    section_name: ClassVar[str] = "{{ cookiecutter.workload_name }}"

    #: renewals over all days (Poisson per day).
    n_rows: int = Field(12000, ge=200)
    n_days: int = Field(240, ge=14)
    start: str = "2025-01-01"
    #: the last ``holdout_days`` days are the evaluation period.
    holdout_days: int = Field(28, ge=1)
    #: the latest share of the training rows that calibrates LightGBM's scores
    #: (a time-ordered validation slice: the trees never saw it).
    calibration_share: float = Field(0.25, gt=0, lt=1)
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    #: a calibrated probability at or above it is served as label 1 (churns).
    threshold: float = Field(0.5, gt=0, lt=1)
    n_estimators: int = Field(300, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(20, ge=1)
    #: inverse regularisation strength of the logistic regression.
    logistic_c: float = Field(1.0, gt=0)
    #: a daily batch with fewer / more rows than these multiples of the
    #: previous validated batch's rows per day is refused by ``validate``.
    min_rows_ratio: float = Field(0.5, gt=0, le=1)
    max_rows_ratio: float = Field(2.0, ge=1)

    @model_validator(mode="after")
    def _holdout_inside(self) -> Self:
        if self.holdout_days >= self.n_days:
            raise ValueError("holdout_days must be shorter than n_days")
        return self
