"""Evaluation: the model and both simple alternatives on the same time-ordered holdout.

Never a random split: every model is trained on the days before the
holdout and judged on the last ``holdout_days`` days, as it will be used.
ROC AUC (does it rank churners first?) is the primary metric, log loss
(are its probabilities right?) the second. ``baseline_<metric>`` is the
stronger of the two alternatives (prior rate, logistic regression) on ROC
AUC: the bar the promotion gate holds the model to. Each alternative is
reported too (``prior_rate_*``, ``logistic_*``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import log_loss, roc_auc_score, roc_curve

from .data import TIME_COLUMN
from .features import INPUT_COLUMNS, training_set
from .models import ALTERNATIVES, make_model
from .models.base import gate_answers
from .settings import {{ cookiecutter.__class_name }}Settings

PRIMARY_METRIC = "roc_auc"
HIGHER_IS_BETTER = True
KEY_METRICS = ("roc_auc", "baseline_roc_auc", "log_loss", "baseline_log_loss")
#: metrics the gate keeps from getting worse than the champion's (name ->
#: higher is better): better ranking must not cost calibration.
GUARD_METRICS: dict[str, bool] = {"log_loss": False}
#: log loss of a probability of exactly 0 or 1 is infinite; clip like sklearn.
EPS = 1e-6


@dataclass
class Holdout:
    """Metrics (model, alternatives, ``baseline_``) and the holdout's predictions."""

    metrics: dict[str, float]
    predictions: pd.DataFrame


def split(data: pd.DataFrame, holdout_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows before the last ``holdout_days`` days, and the rows of those days."""
    cutoff = data[TIME_COLUMN].max() - pd.Timedelta(days=holdout_days - 1)
    before = data[TIME_COLUMN] < cutoff
    return data[before].reset_index(drop=True), data[~before].reset_index(drop=True)


def score(
    y: npt.NDArray[np.int64], probability: npt.NDArray[np.float64]
) -> dict[str, float]:
    """ROC AUC (NaN when only one outcome occurs) and log loss."""
    p = np.clip(np.asarray(probability, dtype=np.float64), EPS, 1 - EPS)
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return {"roc_auc": auc, "log_loss": float(log_loss(y, p, labels=[0, 1]))}


def _alternatives(
    x: pd.DataFrame,
    y: npt.NDArray[np.int64],
    cfg: {{ cookiecutter.__class_name }}Settings,
    seed: int,
) -> dict[str, Callable[[pd.DataFrame], npt.NDArray[np.float64]]]:
    """Each simple alternative, fitted on ``x``, as a predict function."""
    return {name: make_model(name, cfg, seed).fit(x, y).predict for name in ALTERNATIVES}


def _strongest(scores: Mapping[str, dict[str, float]]) -> dict[str, float]:
    """The alternative with the best primary metric (a NaN one never wins)."""
    ranked = sorted(
        scores.values(),
        key=lambda m: -np.inf if np.isnan(m[PRIMARY_METRIC]) else m[PRIMARY_METRIC],
    )
    return ranked[-1]


def holdout(
    data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings, seed: int
) -> Holdout:
    """Fit the model and the alternatives before the holdout and score them on it."""
    train, test = split(data, cfg.holdout_days)
    x_train, y_train = training_set(train, cfg)
    x_test, y_test = training_set(test, cfg)
    model = make_model("lightgbm", cfg, seed).fit(x_train, y_train)
    predicted = model.predict(x_test)
    metrics = score(y_test, predicted)
    answers: dict[str, npt.NDArray[Any]] = {"actual": y_test, "prediction": predicted}
    alternatives = {}
    for name, predict in _alternatives(x_train, y_train, cfg, seed).items():
        answers[name] = answer = predict(x_test)
        alternatives[name] = score(y_test, answer)
        metrics.update({f"{name}_{k}": v for k, v in alternatives[name].items()})
    metrics.update({f"baseline_{k}": v for k, v in _strongest(alternatives).items()})
    metrics["churn_rate"] = float(np.mean(y_test))
    return Holdout(metrics, pd.DataFrame(answers))


def gate_scores(
    data: pd.DataFrame,
    cfg: {{ cookiecutter.__class_name }}Settings,
    seed: int,
    predictors: Mapping[str, Callable[[pd.DataFrame], npt.NDArray[np.float64]]],
) -> dict[str, dict[str, float]]:
    """Score fitted predictors and fresh alternatives on the latest holdout.

    Args:
        data: the validated table.
        cfg: holdout length and model parameters.
        seed: the run's seed.
        predictors: name -> function from raw request rows to probabilities.

    Returns:
        Metrics per predictor name, plus ``baseline`` (the stronger
        alternative, fitted before the holdout as the models were). A
        registered model that lacks features the current code builds no
        longer (removed or renamed since it was trained) cannot answer
        anywhere: it is left out with a warning, so the challenger is judged
        against the alternatives alone.

    Raises:
        MissingFeaturesError: when the challenger itself lacks features.
    """
    train, test = split(data, cfg.holdout_days)
    if test.empty or train.empty:
        raise ValueError("the validated table is too short for its holdout")
    x_train, y_train = training_set(train, cfg)
    x_test, y_test = training_set(test, cfg)
    alternatives = {
        name: score(y_test, predict(x_test))
        for name, predict in _alternatives(x_train, y_train, cfg, seed).items()
    }
    scores = {"baseline": _strongest(alternatives)}
    rows = test[INPUT_COLUMNS]
    for name, answer in gate_answers(predictors, rows).items():
        scores[name] = score(y_test, np.asarray(answer, dtype=np.float64))
    return scores


def plot(predictions: pd.DataFrame, n_bins: int = 10) -> Figure:
    """Reliability (predicted vs observed rate) and ROC curves on the holdout."""
    fig = Figure(figsize=(10, 4.5))
    reliability, roc = fig.subplots(1, 2)
    actual = predictions["actual"].to_numpy()
    for name in [c for c in predictions.columns if c != "actual"]:
        p = predictions[name].to_numpy(dtype=float)
        bins = pd.qcut(p, n_bins, labels=False, duplicates="drop")
        grouped = pd.DataFrame({"p": p, "y": actual, "bin": bins}).groupby("bin").mean()
        reliability.plot(grouped["p"], grouped["y"], marker="o", label=name)
        if len(np.unique(actual)) == 2:
            fpr, tpr, _ = roc_curve(actual, p)
            roc.plot(fpr, tpr, label=name)
    reliability.plot([0, 1], [0, 1], color="black", lw=1)
    reliability.set_xlabel("predicted churn probability")
    reliability.set_ylabel("observed churn rate")
    reliability.legend()
    roc.plot([0, 1], [0, 1], color="black", lw=1)
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate")
    fig.tight_layout()
    return fig
