"""The ML model: gradient-boosted trees (LightGBM) on every feature."""

from __future__ import annotations

from typing import Self

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from .base import ModelContract


class LightGBMRegressor(ModelContract):
    """LightGBM regression with an L2 objective."""

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        seed: int = 42,
    ) -> None:
        """Store the parameters (nothing is learned here)."""
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.seed = seed

    def fit(self, x: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:
        """Fit the trees; single-threaded, so runs are reproducible."""
        self.remember_features(x)
        self.booster_ = lgb.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        ).fit(x, y)
        return self

    def predict(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        """One prediction per row."""
        self.check_fitted("booster_")
        answer = self.booster_.predict(self.fitted_features(x))
        return np.asarray(answer, dtype=np.float64)
