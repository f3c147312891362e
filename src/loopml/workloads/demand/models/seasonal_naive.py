"""The seasonal-naive baseline: "same as the last same weekday".

It is the rule a planner applies by hand, so any model worth promoting has to
beat it on the same backtest folds.
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.sdk.contract import check_fitted

log = logging.getLogger(__name__)

# The feature that holds "sales on the most recent same weekday <= origin".
_FEATURES = {7: "same_weekday_last"}


class SeasonalNaive:
    """Forecast each target date with sales on the last same weekday.

    Args:
        season: season length in days; only the weekly season (7) has a
            matching feature.
    """

    def __init__(self, season: int = 7) -> None:
        """Store the parameters; nothing is checked or learned here."""
        self.season = season

    def get_params(self) -> dict[str, object]:
        """Parameters, for experiment tracking."""
        return {"season": self.season}

    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:  # noqa: N803
        """Record the feature the forecast reads; nothing is learned.

        Args:
            X: feature rows (must contain the seasonal feature).
            y: sales (unused).

        Returns:
            The fitted model.

        Raises:
            ValueError: for a season without a matching feature, or when ``X``
                lacks that feature.
        """
        if self.season not in _FEATURES:
            raise ValueError(
                f"season {self.season} is not supported; choose one of "
                f"{sorted(_FEATURES)}"
            )
        feature = _FEATURES[self.season]
        if feature not in X.columns:
            raise ValueError(f"X lacks the column {feature!r} the baseline reads")
        self.feature_ = feature
        log.debug("seasonal naive fitted on %d rows", len(X))
        return self

    def predict(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:  # noqa: N803
        """Sales on the most recent same weekday on or before the origin.

        Args:
            X: feature rows.

        Returns:
            One forecast per row (NaN where the feature is missing).

        Raises:
            NotFittedError: before :meth:`fit`.
        """
        check_fitted(self, "feature_")
        return np.asarray(X[self.feature_], dtype=np.float64)
