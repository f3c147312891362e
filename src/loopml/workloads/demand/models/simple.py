"""The simple forecasts a planner tries first: a moving average, the last value.

Like :class:`~.seasonal_naive.SeasonalNaive`, each reads one feature the
feature builder already computes at the origin, learns nothing, and is a
baseline the gate holds every model to (``DemandWorkload.baselines``).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.sdk.contract import check_fitted

#: Moving-average windows with a feature: mean sales of the last N days.
_WINDOWS = {7: "rmean_7", 28: "rmean_28"}


class _FeatureForecast:
    """Forecast every horizon with one origin feature."""

    feature_: str | None = None

    def _feature(self) -> str:
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:  # noqa: N803
        """Check ``X`` has the feature; nothing is learned.

        Raises:
            ValueError: when ``X`` lacks the feature the forecast reads.
        """
        feature = self._feature()
        if feature not in X.columns:
            raise ValueError(f"X lacks the column {feature!r} the baseline reads")
        self.feature_ = feature
        return self

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:  # noqa: N803
        """The feature's value, for every horizon (NaN where missing).

        Raises:
            NotFittedError: before :meth:`fit`.
        """
        check_fitted(self, "feature_")
        assert self.feature_ is not None
        return np.asarray(X[self.feature_], dtype=np.float64)


class MovingAverage(_FeatureForecast):
    """Mean daily sales of the last ``window`` days, for every target date.

    Args:
        window: days averaged (7 or 28: the windows the features hold).
    """

    def __init__(self, window: int = 28) -> None:
        """Store the parameters; nothing is checked or learned here."""
        self.window = window

    def get_params(self) -> dict[str, object]:
        """Parameters, for experiment tracking."""
        return {"window": self.window}

    def _feature(self) -> str:
        if self.window not in _WINDOWS:
            raise ValueError(
                f"window {self.window} is not supported; choose one of "
                f"{sorted(_WINDOWS)}"
            )
        return _WINDOWS[self.window]


#: Lags with a feature (days before the origin).
_LAGS = (0, 1, 2, 3, 4, 5, 6, 13, 27)


class LastValue(_FeatureForecast):
    """Sales of one recent day, for every target date (the naive forecast).

    Args:
        lag: days before the origin (0: the origin day itself).
    """

    def __init__(self, lag: int = 0) -> None:
        """Store the parameters; nothing is checked or learned here."""
        self.lag = lag

    def get_params(self) -> dict[str, object]:
        """Parameters, for experiment tracking."""
        return {"lag": self.lag}

    def _feature(self) -> str:
        if self.lag not in _LAGS:
            raise ValueError(f"lag {self.lag} is not supported; choose one of {_LAGS}")
        return f"lag_{self.lag}"
