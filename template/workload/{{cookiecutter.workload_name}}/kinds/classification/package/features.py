"""Model inputs from raw columns: pure functions of one row each."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from .data import CHANNELS, LABEL, PLANS
from .settings import {{ cookiecutter.__class_name }}Settings

NUMERIC_INPUTS = [
    "tenure_months",
    "monthly_fee",
    "usage_hours",
    "usage_change",
    "support_tickets",
    "payment_failures",
    "on_discount",
]
CATEGORICAL_INPUTS = {"plan": PLANS, "channel": CHANNELS}
#: the raw columns a prediction request carries.
INPUT_COLUMNS = [*CATEGORICAL_INPUTS, *NUMERIC_INPUTS]
FEATURE_COLUMNS = [*NUMERIC_INPUTS, "fee_per_hour", *CATEGORICAL_INPUTS]
#: the raw columns ``loopml monitor`` watches for drift (numbers; categories).
NUMERICAL = list(NUMERIC_INPUTS)
CATEGORICAL = list(CATEGORICAL_INPUTS)


def build_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs, in ``FEATURE_COLUMNS`` order, one row per input row.

    Numbers as floats; plan and channel as categories with fixed levels, so
    every frame (a request of one row, a year of data) codes them alike.
    """
    out = rows[NUMERIC_INPUTS].astype("float64").reset_index(drop=True)
    # What an hour of use costs the subscriber: high when paying for little use.
    out["fee_per_hour"] = out["monthly_fee"] / (out["usage_hours"] + 1.0)
    for column, levels in CATEGORICAL_INPUTS.items():
        out[column] = pd.Categorical(rows[column].to_numpy(), categories=levels)
    return out[FEATURE_COLUMNS]


def training_set(
    data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Features and label of every row of a validated table, in time order."""
    return build_features(data), data[LABEL].to_numpy(dtype=np.int64)
