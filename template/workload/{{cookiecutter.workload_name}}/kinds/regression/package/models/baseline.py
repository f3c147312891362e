"""The baseline: the rule used before any model, to be beaten by it.

"An order takes as long as past orders of about the same distance": the
median duration per distance band (quantiles of the training data).
"""

from __future__ import annotations

from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd

from .base import ModelContract


class BandMedian(ModelContract):
    """Median label per quantile band of one column."""

    def __init__(self, column: str = "distance_km", n_bands: int = 5) -> None:
        """Store the parameters (nothing is learned here)."""
        self.column = column
        self.n_bands = n_bands

    def fit(self, x: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:
        """Learn the band edges and each band's median."""
        self.remember_features(x)
        quantiles = np.linspace(0, 1, self.n_bands + 1)[1:-1]
        self.edges_ = np.unique(np.quantile(x[self.column], quantiles))
        bands = np.searchsorted(self.edges_, x[self.column], side="right")
        medians = pd.Series(y).groupby(bands).median()
        overall = float(np.median(y))
        self.medians_ = np.array(
            [medians.get(b, overall) for b in range(len(self.edges_) + 1)]
        )
        return self

    def predict(self, x: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The median of each row's band."""
        self.check_fitted("medians_")
        x = self.fitted_features(x)
        bands = np.searchsorted(self.edges_, x[self.column], side="right")
        return np.asarray(self.medians_[bands], dtype=np.float64)
