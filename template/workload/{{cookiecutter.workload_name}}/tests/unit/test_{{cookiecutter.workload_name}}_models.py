"""Every model of the {{ cookiecutter.workload_name }} workload follows the same contract."""

from __future__ import annotations

import numpy as np
import pytest
from loopml.core.errors import NotFittedError

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import training_set
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
