"""One global LightGBM model over every series and every horizon.

A single model sees all stores, items and horizons at once, so short or noisy
series borrow strength from the rest; ``store_id``, ``item_id`` and
``horizon`` are ordinary features.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.sdk.contract import check_fitted

log = logging.getLogger(__name__)

#: The demand law the model may not contradict: +1 never lowers the forecast
#: as the feature rises, -1 never raises it (LightGBM monotone constraints).
MONOTONE: dict[str, int] = {"promo": 1, "price": -1, "price_ratio": -1}


class LightGBMForecaster:
    """Global gradient-boosted forecaster with a Tweedie objective.

    Tweedie suits daily sales: non-negative, zero-inflated and with a variance
    that grows with the level; it also beat Poisson and L2 on WAPE in backtests
    on the generated data.

    Args:
        n_estimators: number of boosting rounds.
        learning_rate: shrinkage per round.
        num_leaves: maximum leaves per tree.
        min_child_samples: minimum rows per leaf.
        seed: seed of every random choice LightGBM makes.
        num_threads: worker threads; with a fixed value two fits are identical.
        objective: LightGBM objective (``tweedie``, ``poisson``, ``l2``...).
        monotone: constrain the features of :data:`MONOTONE`, so a promotion
            never lowers a forecast and a price rise never raises one (an
            unconstrained fit broke both on a few rows of the generated data;
            the constrained one also had a slightly lower backtest WAPE).
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        seed: int = 42,
        num_threads: int = 1,
        objective: str = "tweedie",
        monotone: bool = True,
    ) -> None:
        """Store the parameters; nothing is checked or learned here."""
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.num_threads = num_threads
        self.objective = objective
        self.monotone = monotone

    def get_params(self) -> dict[str, object]:
        """Parameters, for experiment tracking."""
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "objective": self.objective,
            "monotone": self.monotone,
        }

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        if missing := [c for c in self.feature_names_ if c not in X.columns]:
            raise ValueError(f"X lacks the feature columns {missing}")
        # The columns themselves, not a copy: a training frame can be
        # gigabytes, and LightGBM makes its own float matrix from it.
        frame = pd.DataFrame({c: X[c] for c in self.feature_names_}, copy=False)
        # Pin the categories seen at fit: codes then mean the same thing at
        # predict time, and unseen stores or items become missing values.
        for column, categories in self.categories_.items():
            dtype = frame[column].dtype
            pinned = isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered
            if pinned and list(dtype.categories) == categories:
                continue  # already these codes (the frame fit just saw)
            values = frame[column].astype(object)
            frame[column] = pd.Categorical(values, categories=categories)
        return frame

    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:  # noqa: N803
        """Fit one model on all feature rows.

        Args:
            X: feature rows; ``category`` columns are treated as categorical.
            y: sales, one per row, all ``>= 0``.

        Returns:
            The fitted model.

        Raises:
            ValueError: when ``y`` has the wrong length or negative values.
        """
        target = np.asarray(y, dtype=np.float64)
        if len(target) != len(X) or (target < 0).any():
            raise ValueError("y must have one non-negative value per row of X")
        self.feature_names_: list[str] = [str(c) for c in X.columns]
        self.categories_: dict[str, list[str]] = {
            str(column): sorted(str(v) for v in X[column].dropna().unique())
            for column in X.columns
            if isinstance(X[column].dtype, pd.CategoricalDtype)
        }
        constraints = [
            MONOTONE.get(name, 0) if self.monotone else 0
            for name in self.feature_names_
        ]
        # Here, not at the top: LightGBM (and sklearn) is for fitting only.
        import lightgbm as lgb

        model = lgb.LGBMRegressor(
            objective=self.objective,
            monotone_constraints=constraints,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            n_jobs=self.num_threads,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        model.fit(self._frame(X), target)
        self.model_ = model
        log.info("fitted LightGBM on %d rows x %d features", *X.shape)
        return self

    def _check_fitted(self) -> None:
        check_fitted(self, "model_")

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:  # noqa: N803
        """Forecast sales, clipped at zero.

        Args:
            X: feature rows with the columns seen at fit.

        Returns:
            One non-negative forecast per row.

        Raises:
            NotFittedError: before :meth:`fit`.
            ValueError: when a fitted feature column is missing.
        """
        self._check_fitted()
        raw = np.asarray(self.model_.predict(self._frame(X)), dtype=np.float64)
        return np.clip(raw, 0.0, None)

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature, largest first.

        Raises:
            NotFittedError: before :meth:`fit`.
        """
        self._check_fitted()
        gains = self.model_.booster_.feature_importance(importance_type="gain")
        pairs = zip(self.feature_names_, gains, strict=True)
        return dict(sorted(((n, float(g)) for n, g in pairs), key=lambda p: -p[1]))
