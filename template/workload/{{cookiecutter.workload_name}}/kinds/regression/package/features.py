"""Model inputs from raw columns: pure functions of one row each."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from .settings import {{ cookiecutter.__class_name }}Settings
from .data import LABEL, PEAK_HOURS

#: the raw columns a prediction request carries.
INPUT_COLUMNS = ["date", "distance_km", "items", "hour", "rain", "courier_load"]
FEATURE_COLUMNS = [
    "distance_km",
    "items",
    "hour",
    "rain",
    "courier_load",
    "is_peak",
    "weekday",
]
#: the raw columns ``loopml monitor`` watches for drift (numbers; categories).
NUMERICAL = ["distance_km", "items", "hour", "rain", "courier_load"]
CATEGORICAL: list[str] = []


def build_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs, in ``FEATURE_COLUMNS`` order, one row per input row."""
    out = rows[INPUT_COLUMNS].copy()
    out["is_peak"] = rows["hour"].isin(PEAK_HOURS).astype("int64")
    out["weekday"] = rows["date"].dt.dayofweek.astype("int64")
    return out[FEATURE_COLUMNS].reset_index(drop=True)


def training_set(
    data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings
) -> tuple[pd.DataFrame, npt.NDArray[np.float64]]:
    """Features and label of every row of a validated table."""
    return build_features(data), data[LABEL].to_numpy(dtype=np.float64)
