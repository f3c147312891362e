"""The trained model: beats both alternatives, calibrated, right direction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.evaluate import holdout
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import build_features, training_set
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.models import lightgbm_model, make_model
from utils.{{ cookiecutter.workload_name }}_factory import request_row, small_config, small_raw


@pytest.fixture(scope="module")
def model() -> lightgbm_model.CalibratedLightGBM:
    config = small_config(n_rows=6000, n_days=90)
    x, y = training_set(small_raw(n_rows=6000, n_days=90), config)
    fitted = make_model("lightgbm", config, seed=1).fit(x, y)
    assert isinstance(fitted, lightgbm_model.CalibratedLightGBM)
    return fitted


def test_model_beats_both_alternatives_on_the_holdout() -> None:
    metrics = holdout(small_raw(), small_config(), seed=1).metrics
    assert metrics["roc_auc"] > metrics["logistic_roc_auc"]
    assert metrics["roc_auc"] > metrics["prior_rate_roc_auc"] + 0.15
    assert metrics["baseline_roc_auc"] == max(
        metrics["logistic_roc_auc"], metrics["prior_rate_roc_auc"]
    )
    assert metrics["log_loss"] < metrics["prior_rate_log_loss"]


def test_probabilities_are_calibrated_on_new_days(model: lightgbm_model.CalibratedLightGBM) -> None:
    later = small_raw(seed=99, n_rows=6000, n_days=90)
    p = model.predict(build_features(later))
    assert abs(p.mean() - later["churned"].mean()) < 0.05
    bins = pd.qcut(p, 4, labels=False, duplicates="drop")
    observed = later.groupby(bins)["churned"].mean().to_numpy()
    assert np.all(np.diff(observed) > 0), observed


@pytest.mark.parametrize(
    ("change", "riskier"),
    [
        ({"payment_failures": 2}, True),
        ({"usage_hours": 1.0}, True),
        ({"tenure_months": 48}, False),
        ({"support_tickets": 5}, True),
    ],
)
def test_direction(model: lightgbm_model.CalibratedLightGBM, change: dict[str, object], riskier: bool) -> None:
    rows = build_features(pd.DataFrame([request_row(), request_row(**change)]))
    # The trees' scores move strictly; calibration (a step function) keeps the order.
    before, after = model.uncalibrated(rows)
    assert (after > before) == riskier, (before, after)
    calibrated = model.predict(rows)
    assert (calibrated[1] >= calibrated[0]) if riskier else (calibrated[1] <= calibrated[0])


def test_customer_id_does_not_change_a_score(model: lightgbm_model.CalibratedLightGBM) -> None:
    rows = pd.DataFrame([request_row(customer_id="A"), request_row(customer_id="B")])
    score = model.predict(build_features(rows))
    assert score[0] == score[1]
