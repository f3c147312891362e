"""The model as MLflow logs and serves it: request rows in, predictions out.

Every way of asking it goes through :meth:`{{ cookiecutter.__class_name }}Model.predict`
(loopml's ``/v1``, MLflow's ``/invocations`` and the Open Inference Protocol,
the batch, the monitor), so they all check requests the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from loopml.sdk.capabilities import Output
from mlflow.pyfunc.model import PythonModel

from .features import INPUT_COLUMNS, build_features
from .models import Model
from .schema import validate_request
from .settings import {{ cookiecutter.__class_name }}Settings

#: what the model answers per row (the primary output first).
OUTPUTS = (Output("prediction", "FP64"),)
#: the output the metrics are computed on.
SCORE_COLUMN = "prediction"


class {{ cookiecutter.__class_name }}Model(PythonModel):
    """A fitted model behind the request contract."""

    def __init__(self, model: Model, examples: list[dict[str, Any]]) -> None:
        """Wrap a fitted model and a few valid request rows (JSON-ready)."""
        self.model = model
        self.examples = examples

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """MLflow's entry point: one prediction per valid request row.

        Raises:
            DataValidationError: a row breaks the request contract.
        """
        rows = validate_request(model_input)
        return pd.DataFrame({"prediction": self.model.predict(build_features(rows))})


def python_model(model: Any) -> {{ cookiecutter.__class_name }}Model:
    """The wrapped model, whether given as loaded by MLflow or unwrapped.

    Raises:
        TypeError: for anything else.
    """
    found = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    if not isinstance(found, {{ cookiecutter.__class_name }}Model):
        raise TypeError(f"not a {{ cookiecutter.workload_name }} model: {type(found).__name__}")
    return found


def input_example(data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings) -> pd.DataFrame:
    """Two request rows, logged with the model as its example."""
    return data[INPUT_COLUMNS].head(2).reset_index(drop=True)


def wrap(
    model: Model, data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings
) -> {{ cookiecutter.__class_name }}Model:
    """The MLflow model of a fitted model, with example rows for the service."""
    example = input_example(data, cfg)
    example["date"] = example["date"].dt.strftime("%Y-%m-%d")
    return {{ cookiecutter.__class_name }}Model(model, example.to_dict(orient="records"))


def check_answer(answer: pd.DataFrame, n_rows: int) -> list[str]:
    """What is wrong with the model's answer to ``n_rows`` rows (empty: nothing)."""
    values = pd.to_numeric(answer[SCORE_COLUMN], errors="coerce").to_numpy(dtype=float)
    problems = []
    if len(values) != n_rows:
        problems.append(f"{len(values)} answers for {n_rows} rows")
    if not np.isfinite(values).all():
        problems.append("a prediction is NaN or infinite")
    if (values < 0).any():
        problems.append("a predicted duration is negative")
    return problems
