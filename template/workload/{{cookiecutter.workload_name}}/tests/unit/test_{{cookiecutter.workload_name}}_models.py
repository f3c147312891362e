"""Every model of the {{ cookiecutter.workload_name }} workload follows the same contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from loopml.core.errors import DataValidationError, NotFittedError

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }} import evaluate, pyfunc
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import (
    INPUT_COLUMNS,
    build_features,
    training_set,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.models import MODELS
from utils.{{ cookiecutter.workload_name }}_factory import small_config, small_raw


@pytest.mark.parametrize("name", sorted(MODELS))
def test_init_only_stores_parameters(name: str) -> None:
    model = MODELS[name]()
    rebuilt = type(model)(**model.get_params())
    assert rebuilt.get_params() == model.get_params()
    assert not [k for k in vars(model) if k.endswith("_")]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_refuses_an_unfitted_model(name: str) -> None:
    x, _ = training_set(small_raw(), small_config())
    with pytest.raises(NotFittedError, match=type(MODELS[name]()).__name__):
        MODELS[name]().predict(x)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_returns_self_and_predicts_one_finite_value_per_row(name: str) -> None:
    x, y = training_set(small_raw(), small_config())
    model = MODELS[name]()
    params = model.get_params()
    assert model.fit(x, y) is model
    assert model.get_params() == params
    prediction = model.predict(x)
    assert prediction.shape == (len(x),)
    assert np.isfinite(prediction).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_answers_the_same_after_a_feature_is_added(name: str) -> None:
    x, y = training_set(small_raw(), small_config())
    model = MODELS[name]().fit(x, y)
    assert model.feature_columns_ == list(x.columns)
    # A new feature, first, and the fitted ones in another order.
    wider = x.assign(new_feature=np.arange(len(x), dtype=np.float64))
    wider = wider[["new_feature", *reversed(x.columns)]]
    np.testing.assert_array_equal(model.predict(wider), model.predict(x))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_names_the_fitted_features_it_lacks(name: str) -> None:
    x, y = training_set(small_raw(), small_config())
    model = MODELS[name]().fit(x, y)
    gone = str(x.columns[-1])
    with pytest.raises(DataValidationError, match=gone) as caught:
        model.predict(x.drop(columns=[gone]))
    assert list(caught.value.failure_cases["column"]) == [gone]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_registered_model_runs_the_features_with_a_new_one(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The champion, trained before a feature was added to ``build_features``."""
    config = small_config()
    raw = small_raw()
    x, y = training_set(raw, config)
    wrapped = pyfunc.wrap(MODELS[name]().fit(x, y), raw, config)
    rows = raw[INPUT_COLUMNS].head(20).reset_index(drop=True)
    before = wrapped.predict(None, rows)

    def with_a_new_feature(frame: pd.DataFrame) -> pd.DataFrame:
        built = build_features(frame)
        return built.assign(new_feature=built.iloc[:, 0] * 2.0)

    monkeypatch.setattr(pyfunc, "build_features", with_a_new_feature)
    pd.testing.assert_frame_equal(wrapped.predict(None, rows), before)


def test_the_gate_leaves_out_a_champion_fitted_on_a_removed_feature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = small_config()
    raw = small_raw()
    x, y = training_set(raw, config)
    old = MODELS["lightgbm"]().fit(x.assign(removed_feature=1.0), y)
    new = MODELS["lightgbm"]().fit(x, y)

    def predictor(model: Any) -> Callable[[pd.DataFrame], Any]:
        wrapped = pyfunc.wrap(model, raw, config)
        return lambda rows: wrapped.predict(None, rows)[pyfunc.SCORE_COLUMN]

    both = {"challenger": predictor(new), "champion": predictor(old)}
    scores = evaluate.gate_scores(raw, config, 0, both)
    assert "challenger" in scores and "champion" not in scores
    assert "removed_feature" in caplog.text
    # A challenger lacking features is no model to promote: that fails.
    with pytest.raises(DataValidationError, match="removed_feature"):
        evaluate.gate_scores(raw, config, 0, {"challenger": predictor(old)})
