"""The online scorer: what ``loopml serve`` answers for {{ cookiecutter.workload_name }}.

loopml validates each request row with ``schema.Row`` (a 422 names the
field), calls ``score`` and shapes the answer for every protocol it speaks:
``POST /v1/<workload>/predict`` with ``{"rows": [...]}``, MLflow's
``/v1/<workload>/invocations`` and the Open Inference Protocol v2
(``/v2/models/<workload>/infer``). The outputs are ``pyfunc.OUTPUTS``; the
rows then go through the very request contract training data passed
(``schema.validate_request``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pandas as pd
from loopml.core.errors import DataValidationError
from loopml.sdk.capabilities import (
    InvalidRowsError,
    OnlineScorer,
    Output,
    Scores,
    ScoringContext,
)
from pydantic import BaseModel

from .models.base import MissingFeaturesError
from .pyfunc import OUTPUTS, python_model
from .schema import Row


def row_errors(error: DataValidationError) -> list[tuple[int, str, str, Any]]:
    """``(row, field, message, input)`` per failure of the request contract."""
    found = []
    for case in error.failure_cases.head(50).to_dict(orient="records"):
        position = pd.to_numeric(case.get("index"), errors="coerce")
        row = 0 if pd.isna(position) else int(position)
        value = case.get("failure_case")
        # numpy scalars become plain values, so the 422 body is JSON.
        value = value.item() if hasattr(value, "item") else value
        found.append((row, str(case.get("column")), f"failed {case.get('check')}", value))
    return found or [(0, "rows", str(error), None)]


class {{ cookiecutter.__class_name }}OnlineScorer(OnlineScorer):
    """Request rows in, the champion's answers out (same code as the batch)."""

    row: ClassVar[type[BaseModel]] = Row
    outputs: ClassVar[tuple[Output, ...]] = OUTPUTS

    def score(self, model: Any, rows: Sequence[Any], context: ScoringContext) -> Scores:
        """Score validated rows with one model version.

        Raises:
            InvalidRowsError: a row the request contract refuses (a 422).
            MissingFeaturesError: the model needs a feature the current
                features no longer build (the model's fault: not a 422).
        """
        frame = pd.DataFrame([row.model_dump() for row in rows])
        try:
            answer = python_model(model).predict(None, frame)
        except MissingFeaturesError:
            raise
        except DataValidationError as error:
            raise InvalidRowsError(row_errors(error)) from error
        return Scores({name: answer[name].tolist() for name in answer.columns})

    def example_rows(self, model: Any) -> list[dict[str, Any]]:
        """Rows of the model's training data, as a client sends them."""
        return [dict(row) for row in python_model(model).examples]
