"""The model as MLflow logs and serves it: request rows in, predictions out."""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.config import (
    {{ cookiecutter.__class_name }}Config,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import (
    INPUT_COLUMNS,
    build_features,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.models import Model
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.schema import validate_request


class {{ cookiecutter.__class_name }}Model(PythonModel):
    """A fitted model behind the request contract."""

    def __init__(self, model: Model) -> None:
        """Wrap a fitted model."""
        self.model = model

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """MLflow's entry point: one prediction per valid request row."""
        rows = validate_request(model_input)
        return pd.DataFrame({"prediction": self.model.predict(build_features(rows))})


def wrap(
    model: Model, data: pd.DataFrame, config: {{ cookiecutter.__class_name }}Config
) -> {{ cookiecutter.__class_name }}Model:
    """The MLflow model of a fitted model (this kind needs no other state)."""
    return {{ cookiecutter.__class_name }}Model(model)


def input_example(data: pd.DataFrame, config: {{ cookiecutter.__class_name }}Config) -> pd.DataFrame:
    """Two request rows, logged with the model as its example."""
    return data[INPUT_COLUMNS].head(2).reset_index(drop=True)
