"""Tuning: the LightGBM model's search space and how a configuration is scored.

``loopml tune -w {{ cookiecutter.workload_name }}`` (and ``loopml run``, once
per data version) searches :data:`SEARCH_SPACE` with Ray Tune and Optuna;
each trial calls :func:`objective`. It scores a configuration on
``tune.n_folds`` time folds of ``holdout_days`` days each, all before the
holdout that ``evaluate`` and the promotion gate judge on: the holdout never
chooses the parameters. The best ones go to ``.loopml/state/<name>/tuned.json``
and the next ``train`` and ``evaluate`` use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from loopml.core.config import Settings
from loopml.sdk.tuning import Report, SearchParam

from .evaluate import PRIMARY_METRIC, score, split
from .features import training_set
from .models import make_model
from .settings import {{ cookiecutter.__class_name }}Settings

#: Fields of ``settings.py`` searched, with ranges around their defaults.
SEARCH_SPACE: dict[str, SearchParam] = {
    "n_estimators": SearchParam("int", 50, 600, log=True),
    "learning_rate": SearchParam("float", 0.01, 0.2, log=True),
    "num_leaves": SearchParam("int", 7, 127, log=True),
{%- if cookiecutter.workload_kind == "classification" %}
    "min_child_samples": SearchParam("int", 5, 100, log=True),
{%- endif %}
}


def with_params(settings: Settings, params: Mapping[str, Any]) -> Settings:
    """Settings whose workload section takes ``params``.

    Raises:
        ValueError: naming the field, for a value the settings refuse.
    """
    section = {{ cookiecutter.__class_name }}Settings.section_name
    tuned = settings.with_section(section, dict(params))
    {{ cookiecutter.__class_name }}Settings.of(tuned)  # validated now, not in a trial
    return tuned


def current_params(settings: Settings) -> dict[str, Any]:
    """The values ``settings`` give the searched fields."""
    cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
    return {name: getattr(cfg, name) for name in SEARCH_SPACE}


def folds(
    data: pd.DataFrame, holdout_days: int, n_folds: int
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(training rows, validation rows) per fold, oldest first.

    Each validation period is ``holdout_days`` days; the last one ends the
    day before the holdout, and each fold trains on every earlier day.
    """
    before, _holdout = split(data, holdout_days)
    pairs = []
    for _ in range(n_folds):
        before, validation = split(before, holdout_days)
        pairs.append((before, validation))
    return pairs[::-1]


def objective(settings: Settings, data: pd.DataFrame, report: Report | None) -> float:
    """The primary metric of the configured model, averaged over the folds.

    Args:
        settings: settings with the trial's parameters applied.
        data: the validated table.
        report: receives ``(fold, {primary metric: mean so far})`` per fold,
            so ASHA can stop a weak trial early.

    Raises:
        ValueError: when the table is too short for the folds.
    """
    cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
    values = []
    for step, (train, validation) in enumerate(
        folds(data, cfg.holdout_days, settings.tune.n_folds), start=1
    ):
        if train.empty or validation.empty:
            raise ValueError(
                f"too few days for {settings.tune.n_folds} tuning folds of "
                f"{cfg.holdout_days} days before the holdout"
            )
        x_train, y_train = training_set(train, cfg)
        x_valid, y_valid = training_set(validation, cfg)
        model = make_model("lightgbm", cfg, settings.seed).fit(x_train, y_train)
        values.append(score(y_valid, model.predict(x_valid))[PRIMARY_METRIC])
        if report is not None:
            report(step, {PRIMARY_METRIC: float(np.mean(values))})
    return float(np.mean(values))
