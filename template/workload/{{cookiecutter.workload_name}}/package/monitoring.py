"""What ``loopml monitor -w {{ cookiecutter.workload_name }}`` watches.

* **Drift** of the raw input columns (``features.NUMERICAL`` and
  ``features.CATEGORICAL``): the current window (``monitor.window_days`` up
  to the monitored day) against the reference (``monitor.reference_days``
  of the champion's training data).
* **Data quality** of the current window: rows, days present, missing
  cells, the label's mean.
* **Prediction drift**: the champion's answers on the reference days
  against its answers on the window (served answers from the inference log
  replace the window's when the service logged enough of them).
* **Live performance**: labels arrive with each day's data, so the
  champion's primary metric on the window's labelled rows, next to the one
  the gate measured (``ratio``: how many times worse, for the retrain policy).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
from loopml.core.config import MonitorSettings
from loopml.sdk.capabilities import Monitor, MonitorContext

from .data import LABEL, TIME_COLUMN
from .evaluate import HIGHER_IS_BETTER, PRIMARY_METRIC, score
from .features import CATEGORICAL, INPUT_COLUMNS, NUMERICAL
from .pyfunc import SCORE_COLUMN, python_model


def window(data: pd.DataFrame, end: pd.Timestamp, days: int) -> pd.DataFrame:
    """The rows of the ``days`` days up to ``end`` (included)."""
    day = data[TIME_COLUMN].dt.normalize()
    start = pd.Timestamp(end).normalize() - pd.Timedelta(days=days)
    return data[(day > start) & (day <= pd.Timestamp(end))].reset_index(drop=True)


def _served(context: MonitorContext, min_rows: int) -> pd.Series | None:
    """The champion's logged answers of the window, when there are enough."""
    logged = context.logged(context.settings.monitor.window_days)
    if logged.empty or SCORE_COLUMN not in logged.columns:
        return None
    if "model_version" in logged.columns:
        logged = logged[logged["model_version"].astype(str) == str(context.version)]
    values = pd.to_numeric(logged[SCORE_COLUMN], errors="coerce").dropna()
    return values.reset_index(drop=True) if len(values) >= min_rows else None


class {{ cookiecutter.__class_name }}Monitor(Monitor):
    """Drift of the inputs and the predictions, quality, live metric."""

    numerical: ClassVar[tuple[str, ...]] = tuple(NUMERICAL)
    categorical: ClassVar[tuple[str, ...]] = tuple(CATEGORICAL)

    def samples(
        self,
        data: pd.DataFrame,
        reference_end: pd.Timestamp,
        day: pd.Timestamp,
        cfg: MonitorSettings,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The drift columns of the reference and of the current window."""
        columns = [*NUMERICAL, *CATEGORICAL]
        reference = window(data, reference_end, cfg.reference_days)[columns]
        return reference, window(data, day, cfg.window_days)[columns]

    def quality(
        self, data: pd.DataFrame, day: pd.Timestamp, window_days: int
    ) -> dict[str, Any]:
        """Rows, days present, missing cells and the label's mean in the window."""
        current = window(data, day, window_days)
        days = int(current[TIME_COLUMN].dt.normalize().nunique())
        return {
            "rows": len(current),
            "days": days,
            "expected_days": window_days,
            "rows_per_day": len(current) / max(days, 1),
            "missing_share": float(current.isna().sum().sum() / (current.size or 1)),
            f"{LABEL}_mean": float(current[LABEL].mean()) if len(current) else None,
        }

    def live(self, context: MonitorContext) -> dict[str, Any]:
        """Prediction drift and the primary metric on the window's labels."""
        cfg = context.settings.monitor
        current = window(context.data, context.day, cfg.window_days)
        reference = window(context.data, context.reference_end, cfg.reference_days)
        if current.empty or reference.empty:
            return {}
        model = python_model(context.model())

        def answers(rows: pd.DataFrame) -> pd.Series:
            return model.predict(None, rows[INPUT_COLUMNS])[SCORE_COLUMN]

        answered = answers(current)
        served = _served(context, cfg.min_rows)
        verdicts = context.detect(
            pd.DataFrame({SCORE_COLUMN: answers(reference)}),
            pd.DataFrame({SCORE_COLUMN: answered if served is None else served}),
            [SCORE_COLUMN],
            [],
        )
        source = "champion on the window" if served is None else "inference_log"
        value = score(current[LABEL].to_numpy(), answered.to_numpy(dtype=float))[
            PRIMARY_METRIC
        ]
        performance: dict[str, Any] = {
            "metric": PRIMARY_METRIC,
            "value": value,
            "n": len(current),
            "source": "champion on the window's labelled rows",
        }
        backtest = context.tags.get(f"metric.{PRIMARY_METRIC}")
        if backtest and pd.notna(value):
            bar = float(backtest)
            worse = bar / max(value, 1e-9) if HIGHER_IS_BETTER else value / max(bar, 1e-9)
            performance.update(backtest=bar, ratio=worse)
        # Per-column verdicts (also accepted: a drift summary holding them).
        drift = verdicts.get("columns", verdicts).get(SCORE_COLUMN, {})
        return {
            "prediction_drift": {**drift, "source": source},
            "performance": performance if pd.notna(value) else None,
        }
