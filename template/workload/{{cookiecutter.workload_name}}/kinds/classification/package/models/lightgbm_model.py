"""The ML model: LightGBM trees whose scores are calibrated into probabilities.

Boosted trees rank well but their scores are not rates. The trees learn on
the earlier part of the training rows and a calibrator (isotonic by
default, or Platt's sigmoid) maps their scores to observed churn rates on
the latest ``calibration_share`` of them: a time-ordered validation slice
the trees never saw, as the model will be used.
"""

from __future__ import annotations

from typing import Self

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from .base import ModelContract

#: probabilities stay inside [EPS, 1 - EPS]: a calibrator sure of 0 or 1
#: would make one surprise cost an infinite log loss.
EPS = 0.005


class CalibratedLightGBM(ModelContract):
    """A LightGBM classifier with a calibrator fitted on the latest rows."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        calibration_share: float = 0.25,
        calibration: str = "isotonic",
        seed: int = 42,
    ) -> None:
        """Store the parameters (nothing is learned here)."""
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.calibration_share = calibration_share
        self.calibration = calibration
        self.seed = seed

    def fit(self, x: pd.DataFrame, y: npt.NDArray[np.int64]) -> Self:
        """Fit the trees on the earlier rows, the calibrator on the latest.

        ``x`` must be in time order (``features.training_set`` keeps it).

        Raises:
            ValueError: when either part lacks churned or renewed rows.
        """
        self.remember_features(x)
        cut = int(len(x) * (1 - self.calibration_share))
        for part, labels in (("training", y[:cut]), ("calibration", y[cut:])):
            if len(np.unique(labels)) < 2:
                raise ValueError(f"the {part} rows need both outcomes to learn from")
        self.booster_ = lgb.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        ).fit(x.iloc[:cut], y[:cut])
        scores = self._scores(x.iloc[cut:])
        if self.calibration == "isotonic":
            self.calibrator_: IsotonicRegression | LogisticRegression = (
                IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS)
            ).fit(scores, y[cut:])
        else:
            self.calibrator_ = LogisticRegression().fit(scores.reshape(-1, 1), y[cut:])
        return self

    def _scores(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster_.predict_proba(x), dtype=np.float64)[:, 1]

    def predict(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The calibrated probability of churning, per row."""
        self.check_fitted("calibrator_")
        scores = self._scores(self.fitted_features(x))
        if isinstance(self.calibrator_, IsotonicRegression):
            probability = self.calibrator_.predict(scores)
        else:
            probability = self.calibrator_.predict_proba(scores.reshape(-1, 1))[:, 1]
        return np.asarray(probability, dtype=np.float64).clip(EPS, 1 - EPS)

    def uncalibrated(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The trees' own scores (to see what calibration changed)."""
        self.check_fitted("booster_")
        return self._scores(self.fitted_features(x))
