"""New days of the source, for ``loopml replay -w {{ cookiecutter.workload_name }}``.

The replay lives the days after the history one by one (ingest, validate,
the daily answers, monitor, retrain); ``--drift-from K`` changes the world
from its K-th day on (``data.days``), so monitoring and retraining can be
watched reacting.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from loopml.core.config import Settings
from loopml.sdk.capabilities import DaySource

from .data import days as source_days
from .features import INPUT_COLUMNS
from .pyfunc import python_model
from .settings import {{ cookiecutter.__class_name }}Settings


class {{ cookiecutter.__class_name }}DaySource(DaySource):
    """The generator's days after the history, drifted on request."""

    can_drift: ClassVar[bool] = True

    def days(
        self,
        settings: Settings,
        first: pd.Timestamp,
        n_days: int,
        drift_from: int | None = None,
    ) -> pd.DataFrame:
        """Raw rows of ``n_days`` days from ``first`` (drifted from ``drift_from``)."""
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        return source_days(cfg, first, n_days, settings.seed, drift_from)

    def daily_predictions(
        self,
        model: Any,
        data: pd.DataFrame,
        next_rows: pd.DataFrame,
        day: pd.Timestamp,
    ) -> pd.DataFrame | None:
        """The champion's answers for the next day's rows, as the service gives them."""
        if next_rows.empty:
            return None
        rows = next_rows[INPUT_COLUMNS].reset_index(drop=True)
        answer = python_model(model).predict(None, rows)
        return pd.concat([rows, answer], axis=1)
