"""Behaviour of the trained model: beats the baseline, reacts in the right direction."""

from __future__ import annotations

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.evaluate import holdout
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import build_features, training_set
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.models import lightgbm_model, make_model
from utils.{{ cookiecutter.workload_name }}_factory import small_config, small_raw


@pytest.fixture(scope="module")
def model() -> lightgbm_model.LightGBMRegressor:
    config = small_config()
    x, y = training_set(small_raw(), config)
    fitted = make_model("lightgbm", config, seed=1).fit(x, y)
    assert isinstance(fitted, lightgbm_model.LightGBMRegressor)
    return fitted


def test_model_beats_the_baseline_on_the_holdout() -> None:
    metrics = holdout(small_raw(), small_config(), seed=1).metrics
    assert metrics["mae"] < 0.9 * metrics["baseline_mae"]


def _order(**values: object) -> pd.DataFrame:
    base: dict[str, object] = {
        "date": pd.Timestamp("2025-03-04"),
        "distance_km": 4.0,
        "items": 3,
        "hour": 15,
        "rain": 0,
        "courier_load": 0.3,
    }
    return pd.DataFrame([{**base, **values}])


@pytest.mark.parametrize(
    ("change", "slower"),
    [
        ({"distance_km": 12.0}, True),
        ({"rain": 1}, True),
        ({"hour": 19}, True),
    ],
)
def test_direction(model: lightgbm_model.LightGBMRegressor, change: dict[str, object], slower: bool) -> None:
    before = model.predict(build_features(_order()))[0]
    after = model.predict(build_features(_order(**change)))[0]
    assert (after > before) == slower


def test_order_id_does_not_change_a_prediction(model: lightgbm_model.LightGBMRegressor) -> None:
    rows = pd.concat([_order(order_id="A"), _order(order_id="B")])
    prediction = model.predict(build_features(rows))
    assert prediction[0] == prediction[1]
