"""Tuning: the search space, the parameters laid over the settings, the objective.

The objective is called directly, as a Ray Tune trial calls it (no Ray here):
it must score on folds before the holdout, never on the holdout itself.
"""

from __future__ import annotations

import math

import pytest
from loopml.sdk.tuning import SearchParam

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import LABEL, TIME_COLUMN
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.evaluate import PRIMARY_METRIC, split
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.settings import (
    {{ cookiecutter.__class_name }}Settings,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.tuning import folds
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.workload import (
    {{ cookiecutter.__class_name }}Workload,
)
from utils.{{ cookiecutter.workload_name }}_factory import small_raw, small_settings

WORKLOAD = {{ cookiecutter.__class_name }}Workload()


def test_the_search_space_ranges_over_model_settings_around_their_defaults() -> None:
    space = WORKLOAD.search_space(small_settings())
    assert {"learning_rate", "num_leaves", "n_estimators"} <= set(space)
    defaults = {{ cookiecutter.__class_name }}Settings()
    for name, param in space.items():
        assert isinstance(param, SearchParam)
        assert param.low <= getattr(defaults, name) <= param.high, name
    assert space["learning_rate"].log


def test_with_params_lays_the_params_over_the_section_and_validates_them() -> None:
    settings = small_settings(n_rows=777, learning_rate=0.07)
    assert WORKLOAD.current_params(settings)["learning_rate"] == 0.07
    tuned = WORKLOAD.with_params(settings, {"learning_rate": 0.11, "num_leaves": 9})
    cfg = {{ cookiecutter.__class_name }}Settings.of(tuned)
    assert (cfg.learning_rate, cfg.num_leaves, cfg.n_rows) == (0.11, 9, 777)
    assert WORKLOAD.current_params(tuned)["num_leaves"] == 9
    assert {{ cookiecutter.__class_name }}Settings.of(settings).num_leaves != 9  # a copy
    with pytest.raises(ValueError, match="num_leaves"):
        WORKLOAD.with_params(settings, {"num_leaves": 1})


def test_the_objective_reports_each_fold_and_never_sees_the_holdout() -> None:
    settings = small_settings()
    cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
    data = WORKLOAD.validate(small_raw())
    params = WORKLOAD.current_params(settings)
    reports: list[tuple[int, dict[str, float]]] = []
    value = WORKLOAD.tune_objective(
        settings, data, params, lambda step, metrics: reports.append((step, metrics))
    )
    assert math.isfinite(value)
    steps = WORKLOAD.tune_steps(settings)
    assert [step for step, _ in reports] == list(range(1, steps + 1))
    assert reports[-1][1] == {PRIMARY_METRIC: value}

    _, holdout = split(data, cfg.holdout_days)
    last_validation = folds(data, cfg.holdout_days, settings.tune.n_folds)[-1][1]
    assert last_validation[TIME_COLUMN].max() < holdout[TIME_COLUMN].min()
    # Other labels in the holdout change nothing: tuning never reads them.
    changed = data.copy()
    in_holdout = changed[TIME_COLUMN] >= holdout[TIME_COLUMN].min()
    labels = changed.loc[in_holdout, LABEL]
    changed.loc[in_holdout, LABEL] = labels.max() - labels
    assert not changed[LABEL].equals(data[LABEL])
    assert WORKLOAD.tune_objective(settings, changed, params) == value
