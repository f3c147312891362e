"""Demand forecasters: the contract they share and the registry of names.

Every model follows the scikit-learn habit: ``__init__`` only stores
parameters, ``fit`` learns and sets attributes ending in ``_``, and ``predict``
raises :class:`~loopml.core.errors.NotFittedError` before ``fit``.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.demand.models.lightgbm_forecaster import LightGBMForecaster
from loopml.workloads.demand.models.seasonal_naive import SeasonalNaive
from loopml.workloads.demand.models.simple import LastValue, MovingAverage


@runtime_checkable
class ForecastModel(Protocol):
    """What backtests, training and serving need from a forecaster."""

    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:  # noqa: N803
        """Learn from feature rows ``X`` and their sales ``y``."""
        ...

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:  # noqa: N803
        """Forecast sales for feature rows ``X``."""
        ...


MODELS: dict[str, type[ForecastModel]] = {
    "seasonal_naive": SeasonalNaive,
    "moving_average": MovingAverage,
    "last_value": LastValue,
    "lightgbm_forecaster": LightGBMForecaster,
}
#: The simple alternatives every forecaster is held to, by gate name.
BASELINES: dict[str, type[ForecastModel]] = {
    "seasonal_naive": SeasonalNaive,
    "moving_average": MovingAverage,
    "last_value": LastValue,
}

__all__ = [
    "BASELINES",
    "MODELS",
    "ForecastModel",
    "LastValue",
    "LightGBMForecaster",
    "MovingAverage",
    "SeasonalNaive",
]
