"""Small real data for the workload's tests (the generator at a small size)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from loopml.core.config import Settings

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import load
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.settings import (
    {{ cookiecutter.__class_name }}Settings,
)

#: the workload's tiny size (its settings section): seconds per loop.
TINY: dict[str, Any] = {
    "n_rows": 1500,
    "n_days": 60,
    "holdout_days": 14,
    "n_estimators": 60,
}


def small_config(**overrides: Any) -> {{ cookiecutter.__class_name }}Settings:
    """The workload's settings at the tiny size (whatever the environment says)."""
    return {{ cookiecutter.__class_name }}Settings(**{**TINY, **overrides})


def small_settings(**overrides: Any) -> Settings:
    """loopml's settings with the workload's section at the tiny size."""
    section = {**TINY, **overrides}
    return Settings(workloads={"{{ cookiecutter.workload_name }}": section})


def small_raw(seed: int = 7, **overrides: Any) -> pd.DataFrame:
    """A small generated raw table."""
    return load(small_config(**overrides), seed)


def request_row(**changes: Any) -> dict[str, Any]:
    """One valid request row, as a client sends it (JSON types)."""
    row: dict[str, Any] = {
        "date": "2025-03-04",
        "distance_km": 4.0,
        "items": 3,
        "hour": 15,
        "rain": 0,
        "courier_load": 0.3,
    }
    return {**row, **changes}
