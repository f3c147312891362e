"""Tuning the demand forecaster: its search space and its objective.

A trial scores a configuration with the same rolling-origin backtest as
``evaluate``, on ``tune.n_folds`` folds that all end before the first fold
``evaluate`` reports on: the holdout that judges the tuned candidate (against
the baseline and the champion) never chose its parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.sdk.tuning import Report, SearchParam
from loopml.workloads.demand.config import DemandModelSettings, DemandSettings
from loopml.workloads.demand.evaluate import backtest, wape
from loopml.workloads.demand.models import ForecastModel

if TYPE_CHECKING:
    from loopml.core.config import Settings

#: Ranges around the defaults (300 trees, 0.05, 31 leaves, 20 rows per leaf).
SEARCH_SPACE: dict[str, SearchParam] = {
    "n_estimators": SearchParam("int", 50, 600, log=True),
    "learning_rate": SearchParam("float", 0.01, 0.2, log=True),
    "num_leaves": SearchParam("int", 7, 127, log=True),
    "min_child_samples": SearchParam("int", 5, 100, log=True),
}


def with_params(settings: Settings, params: Mapping[str, Any]) -> Settings:
    """Settings whose ``demand.model`` takes ``params`` (validated).

    Raises:
        pydantic.ValidationError: for a value the model settings refuse.
    """
    DemandModelSettings.model_validate(
        {**DemandSettings.of(settings).model.model_dump(), **params}
    )
    tuned = settings.with_section("demand", {"model": dict(params)})
    DemandSettings.of(tuned)  # the whole section still holds
    return tuned


def tuning_cutoff(settings: Settings, data: pd.DataFrame) -> pd.Timestamp:
    """The origin of ``evaluate``'s first fold: tuning data ends there."""
    cfg = DemandSettings.of(settings)
    last = pd.Timestamp(data["date"].max())
    return last - pd.Timedelta(days=cfg.horizon + (cfg.n_folds - 1) * cfg.fold_step)


def objective(
    settings: Settings,
    data: pd.DataFrame,
    make_model: Callable[[], ForecastModel],
    report: Report | None = None,
) -> float:
    """Backtest WAPE of a forecaster on the folds before ``evaluate``'s.

    Args:
        settings: settings with the trial's parameters applied.
        data: the validated raw table.
        make_model: builds the unfitted forecaster (once per fold).
        report: receives ``(fold, {"wape": pooled WAPE so far})`` per fold.

    Returns:
        The WAPE pooled over the ``tune.n_folds`` folds.
    """
    cfg = DemandSettings.of(settings)
    past = data[data["date"] <= tuning_cutoff(settings, data)]

    def on_fold(fold: int, predictions: pd.DataFrame) -> None:
        if report is not None:
            so_far = wape(predictions["sales"], predictions["prediction"])
            report(fold, {"wape": so_far})

    result = backtest(
        past,
        make_model,
        horizon=cfg.horizon,
        n_folds=settings.tune.n_folds,
        fold_step=cfg.fold_step,
        origin_step=cfg.origin_step,
        on_fold=on_fold,
    )
    return float(result.metrics["wape"])
