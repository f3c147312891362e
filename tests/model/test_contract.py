"""Every registered model through the one model contract (``workloads/contract.py``).

``__init__`` stores parameters only, ``fit`` returns ``self`` and learns only
``_`` attributes, an unfitted model refuses to answer, and the model survives
MLflow: logged inside its workload's pyfunc wrapper to a real (temporary)
tracking store, loaded back, it gives identical answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.pyfunc.model import PythonModel

from loopml.core.errors import NotFittedError
from loopml.sdk.contract import Model, registered_models
from loopml.workloads.demand.features import FEATURE_COLUMNS, KEYS, origin_state
from loopml.workloads.demand.pyfunc import DemandForecastModel
from loopml.workloads.recsys.data import RecsysData
from loopml.workloads.recsys.pyfunc import RecsysModel

MODELS = registered_models()
NAMES = sorted(MODELS)
USERS = ["U0001", "U0002", "U0150", "newcomer"]
Fitted = dict[str, tuple[dict[str, Any], Any, Any]]


def _fit(name: str, model: Any, examples: pd.DataFrame, train: RecsysData) -> Any:
    if name.startswith("demand."):
        return model.fit(examples[FEATURE_COLUMNS], examples["sales"].to_numpy())
    return model.fit(train)


def _answer(name: str, model: Any, examples: pd.DataFrame) -> Any:
    if name.startswith("demand."):
        return model.predict(examples[FEATURE_COLUMNS].head(200))
    return model.recommend(USERS, 5)


@pytest.fixture(scope="module")
def fitted(
    demand_examples: pd.DataFrame, recsys_split: tuple[RecsysData, pd.DataFrame]
) -> Fitted:
    """Per model: its attributes before fit, the model, what fit returned."""
    out: Fitted = {}
    for name, factory in MODELS.items():
        model = factory()
        before = dict(vars(model))
        out[name] = (before, model, _fit(name, model, demand_examples, recsys_split[0]))
    return out


def test_every_workload_registers_its_models() -> None:
    assert NAMES == [
        "demand.last_value",
        "demand.lightgbm_forecaster",
        "demand.moving_average",
        "demand.seasonal_naive",
        "recsys.als",
        "recsys.global_popularity",
        "recsys.ranker",
        "recsys.segment_popularity",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_init_stores_parameters_only(name: str) -> None:
    model = MODELS[name]()
    assert isinstance(model, Model)
    params = model.get_params()
    assert params, "a model without parameters cannot be tracked"
    assert vars(model) == params
    assert not [attribute for attribute in vars(model) if attribute.endswith("_")]
    assert type(model)(**params).get_params() == params


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_model_refuses_to_answer(
    name: str, demand_examples: pd.DataFrame
) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet: call fit"):
        _answer(name, MODELS[name](), demand_examples)


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_learns_only_underscore_attributes(
    name: str, fitted: Fitted
) -> None:
    before, model, returned = fitted[name]
    assert returned is model
    learned = set(vars(model)) - set(before)
    assert learned, "fit learned nothing"
    assert all(attribute.endswith("_") for attribute in learned), learned
    assert {key: vars(model)[key] for key in before} == before  # params untouched


def _wrapped(
    name: str,
    model: Any,
    raw: pd.DataFrame,
    requests: pd.DataFrame,
    train: RecsysData,
) -> tuple[PythonModel, pd.DataFrame]:
    """The workload's MLflow wrapper around ``model`` and a request for it."""
    if name.startswith("recsys."):
        request = pd.DataFrame(
            {"user_id": USERS, "k": [5, 3, 4, 5], "segment": [None, None, None, "hr"]}
        )
        return RecsysModel(model, train, k=5), request
    origin = pd.Timestamp(raw["date"].max())
    last = raw.sort_values("date").groupby(KEYS).tail(1)[[*KEYS, "price"]]
    state = origin_state(raw, origin).merge(
        last.rename(columns={"price": "last_price"}), on=KEYS
    )
    request = requests.assign(
        date=requests["date"].dt.strftime("%Y-%m-%d"),
        promo=[i % 2 for i in range(len(requests))],
    )
    return DemandForecastModel(model, state, origin, horizon=14), request


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_mlflow_gives_identical_answers(
    name: str,
    fitted: Fitted,
    demand_raw: pd.DataFrame,
    demand_requests: pd.DataFrame,
    recsys_split: tuple[RecsysData, pd.DataFrame],
    mlflow_store: Path,
) -> None:
    _, model, _ = fitted[name]
    wrapped, request = _wrapped(
        name, model, demand_raw, demand_requests, recsys_split[0]
    )
    expected = wrapped.predict(None, request)
    assert len(expected) > 0
    with mlflow.start_run(run_name=f"contract-{name}"):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=wrapped, pip_requirements=["loopml"]
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    pd.testing.assert_frame_equal(loaded.predict(request), expected)
    inner = loaded.unwrap_python_model()
    served = inner.forecaster if name.startswith("demand.") else inner.recommender
    assert type(served) is type(model)
    assert served.get_params() == model.get_params()
