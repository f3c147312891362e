"""The first simple alternative: everyone churns at the rate of the past.

"A renewal is lost with the usual probability": the training data's churn
rate for every subscriber. It ranks no one above anyone (ROC AUC 0.5), so
it is the floor of the log loss the calibrated model must beat.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from .base import ModelContract


class PriorRate(ModelContract):
    """The training churn rate, for every row."""

    def __init__(self) -> None:
        """Nothing to set: the model has no parameters."""

    def fit(self, x: pd.DataFrame, y: npt.NDArray[np.int64]) -> Self:
        """Learn the share of churned rows."""
        self.remember_features(x)
        self.rate_ = float(np.mean(y))
        return self

    def predict(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The churn rate, once per row."""
        self.check_fitted("rate_")
        x = self.fitted_features(x)
        return np.full(len(x), self.rate_, dtype=np.float64)
