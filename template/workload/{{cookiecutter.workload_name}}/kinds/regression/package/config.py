"""Settings of the {{ cookiecutter.workload_name }} workload: data size, holdout, model.

Every field can be set from the environment with the ``{{ cookiecutter.__env_prefix }}``
prefix, e.g. ``{{ cookiecutter.__env_prefix }}N_ROWS=2000`` or
``{{ cookiecutter.__env_prefix }}N_ESTIMATORS=50``; loopml's own settings (seed,
home, MLflow) stay in ``configs/`` and ``LOOPML_*``.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class {{ cookiecutter.__class_name }}Config(BaseSettings):
    """Generated data size, holdout length and LightGBM parameters."""

    model_config = SettingsConfigDict(env_prefix="{{ cookiecutter.__env_prefix }}", extra="forbid")

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

    @model_validator(mode="after")
    def _holdout_inside(self) -> Self:
        if self.holdout_days >= self.n_days:
            raise ValueError("holdout_days must be shorter than n_days")
        return self
