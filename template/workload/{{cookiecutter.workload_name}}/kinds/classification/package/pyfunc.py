"""The model as MLflow logs and serves it: rows in, probability and label out.

Every way of asking it goes through :meth:`{{ cookiecutter.__class_name }}Model.predict`
(loopml's ``/v1``, MLflow's ``/invocations`` and the Open Inference Protocol,
the batch, the monitor), so they all check requests the same way. The
label uses the threshold the model was trained with, so a version always
answers alike.
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

#: what the model answers per row: the calibrated probability of churning
#: (the primary output) and the label at the threshold (1: churns).
OUTPUTS = (Output("probability", "FP64"), Output("label", "INT64"))
#: the output the metrics are computed on.
SCORE_COLUMN = "probability"


class {{ cookiecutter.__class_name }}Model(PythonModel):
    """A fitted classifier behind the request contract, with its threshold."""

    def __init__(
        self, model: Model, threshold: float, examples: list[dict[str, Any]]
    ) -> None:
        """Wrap a fitted model, its label threshold and valid request rows."""
        self.model = model
        self.threshold = threshold
        self.examples = examples

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """MLflow's entry point: probability and label per valid request row.

        Raises:
            DataValidationError: a row breaks the request contract.
        """
        rows = validate_request(model_input)
        probability = self.model.predict(build_features(rows))
        label = (probability >= self.threshold).astype("int64")
        return pd.DataFrame({"probability": probability, "label": label})


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
    """Two request rows (one churned, one renewed), logged with the model."""
    picked = data.groupby("churned", group_keys=False).head(1).head(2)
    return picked[INPUT_COLUMNS].reset_index(drop=True)


def wrap(
    model: Model, data: pd.DataFrame, cfg: {{ cookiecutter.__class_name }}Settings
) -> {{ cookiecutter.__class_name }}Model:
    """The MLflow model of a fitted model, with its threshold and example rows."""
    examples = input_example(data, cfg).to_dict(orient="records")
    return {{ cookiecutter.__class_name }}Model(model, cfg.threshold, examples)


def check_answer(answer: pd.DataFrame, n_rows: int) -> list[str]:
    """What is wrong with the model's answer to ``n_rows`` rows (empty: nothing)."""
    probability = pd.to_numeric(answer["probability"], errors="coerce").to_numpy(float)
    problems = []
    if len(probability) != n_rows:
        problems.append(f"{len(probability)} answers for {n_rows} rows")
    if not (np.isfinite(probability) & (probability >= 0) & (probability <= 1)).all():
        problems.append("a probability is outside [0, 1]")
    if not set(pd.unique(answer["label"])) <= {0, 1}:
        problems.append("a label is not 0 or 1")
    return problems
