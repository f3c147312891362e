"""Small real data for the {{ cookiecutter.workload_name }} tests (the generator at a small size)."""

from __future__ import annotations

import pandas as pd

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.config import (
    {{ cookiecutter.__class_name }}Config,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import load


def small_config(**overrides: object) -> {{ cookiecutter.__class_name }}Config:
    """A config for fast tests (explicit values, whatever the environment says)."""
    values: dict[str, object] = {
        "n_rows": 1500,
        "n_days": 60,
        "holdout_days": 14,
        "n_estimators": 60,
    }
    return {{ cookiecutter.__class_name }}Config(**{**values, **overrides})


def small_raw(seed: int = 7, **overrides: object) -> pd.DataFrame:
    """A small generated raw table."""
    return load(small_config(**overrides), seed)
