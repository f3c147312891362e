"""The second simple alternative: a logistic regression on the same inputs.

One-hot plan and channel, standardised numbers: what a careful analyst
would fit first. It is calibrated by construction but straight-lined: it
misses thresholds ("hardly uses it") and interactions ("premium and
hardly uses it"), which the LightGBM model must show it captures.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .base import ModelContract


class Logistic(ModelContract):
    """scikit-learn's logistic regression behind one-hot and scaling."""

    def __init__(self, c: float = 1.0) -> None:
        """Store the inverse regularisation strength."""
        self.c = c

    def fit(self, x: pd.DataFrame, y: npt.NDArray[np.int64]) -> Self:
        """Fit the encoders and the regression."""
        self.remember_features(x)
        categorical = [c for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)]
        numeric = [c for c in x.columns if c not in categorical]
        levels = [list(x[c].cat.categories) for c in categorical]
        encode = ColumnTransformer(
            [
                ("categories", OneHotEncoder(categories=levels, handle_unknown="ignore"), categorical),
                ("numbers", StandardScaler(), numeric),
            ]
        )
        self.pipeline_ = Pipeline(
            [("encode", encode), ("regression", LogisticRegression(C=self.c, max_iter=1000))]
        ).fit(x, y)
        return self

    def predict(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The probability of churning, per row."""
        self.check_fitted("pipeline_")
        x = self.fitted_features(x)
        return np.asarray(self.pipeline_.predict_proba(x)[:, 1], dtype=np.float64)
