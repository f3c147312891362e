"""Evaluation: model and baseline on the same time-ordered holdout.

Never a random split: the model is trained on the days before the holdout
and judged on the last ``holdout_days`` days, as it will be used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from .settings import {{ cookiecutter.__class_name }}Settings
from .data import TIME_COLUMN
from .features import INPUT_COLUMNS, training_set
from .models import make_model
from .models.base import gate_answers

PRIMARY_METRIC = "mae"
HIGHER_IS_BETTER = False
KEY_METRICS = ("mae", "baseline_mae", "rmse", "baseline_rmse")
#: metrics the gate keeps from getting worse than the champion's (name ->
#: higher is better); none for this kind.
GUARD_METRICS: dict[str, bool] = {}


@dataclass
class Holdout:
    """Metrics (model and ``baseline_``) and the holdout's predictions."""

    metrics: dict[str, float]
    predictions: pd.DataFrame


def split(data: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows before the last ``holdout_days`` days, and the rows of those days."""
    cutoff = data[TIME_COLUMN].max() - pd.Timedelta(days=holdout_days - 1)
    before = data[TIME_COLUMN] < cutoff
    return data[before].reset_index(drop=True), data[~before].reset_index(drop=True)


def score(
    y: npt.NDArray[np.float64], prediction: npt.NDArray[np.float64]
) -> dict[str, float]:
    """Mean absolute error and root mean squared error."""
    error = prediction - y
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
    }


def holdout(
    data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings, seed: int
) -> Holdout:
    """Fit model and baseline before the holdout and score both on it."""
    train, test = split(data, cfg.holdout_days)
    x_train, y_train = training_set(train, cfg)
    x_test, y_test = training_set(test, cfg)
    model = make_model("lightgbm", cfg, seed).fit(x_train, y_train)
    baseline = make_model("baseline", cfg, seed).fit(x_train, y_train)
    predicted, expected = model.predict(x_test), baseline.predict(x_test)
    metrics = score(y_test, predicted)
    metrics.update({f"baseline_{k}": v for k, v in score(y_test, expected).items()})
    predictions = pd.DataFrame(
        {"actual": y_test, "prediction": predicted, "baseline": expected}
    )
    return Holdout(metrics, predictions)


def gate_scores(
    data: pd.DataFrame,
    cfg: {{ cookiecutter.__class_name }}Settings,
    seed: int,
    predictors: Mapping[str, Callable[[pd.DataFrame], npt.NDArray[np.float64]]],
) -> dict[str, dict[str, float]]:
    """Score fitted predictors and a fresh baseline on the latest holdout.

    Args:
        data: the validated table.
        cfg: holdout length and baseline parameters.
        seed: the run's seed.
        predictors: name -> function from raw request rows to predictions.

    Returns:
        Metrics per predictor name, plus ``baseline`` (fitted before the
        holdout, as the models were). A registered model that lacks
        features the current code builds no longer (removed or renamed since
        it was trained) cannot answer anywhere: it is left out with a warning,
        so the challenger is judged against the baseline alone.

    Raises:
        MissingFeaturesError: when the challenger itself lacks features.
    """
    train, test = split(data, cfg.holdout_days)
    if test.empty or train.empty:
        raise ValueError("the validated table is too short for its holdout")
    x_train, y_train = training_set(train, cfg)
    x_test, y_test = training_set(test, cfg)
    baseline = make_model("baseline", cfg, seed).fit(x_train, y_train)
    scores = {"baseline": score(y_test, baseline.predict(x_test))}
    rows = test[INPUT_COLUMNS]
    for name, answer in gate_answers(predictors, rows).items():
        scores[name] = score(y_test, answer)
    return scores


def plot(predictions: pd.DataFrame) -> Figure:
    """Predicted against actual on the holdout, model and baseline."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.scatter(predictions["actual"], predictions["baseline"], s=4, label="baseline")
    ax.scatter(predictions["actual"], predictions["prediction"], s=4, label="model")
    top = float(predictions[["actual", "prediction"]].to_numpy().max())
    ax.plot([0, top], [0, top], color="black", lw=1)
    ax.set_xlabel("actual")
    ax.set_ylabel("predicted")
    ax.legend()
    fig.tight_layout()
    return fig
