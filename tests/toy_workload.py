"""``toy``: a plug-in workload for serving tests (y = 2 x), registered with
``LOOPML_PLUGINS`` (:data:`PLUGIN`); :func:`toy_champion` trains it through the
real stages and registry and makes version 1 the champion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel
from pydantic import BaseModel, ConfigDict, Field

from loopml.core.config import Settings, load_settings
from loopml.models.registry import CHAMPION, set_alias
from loopml.sdk.capabilities import (
    InvalidRowsError,
    OnlineScorer,
    Output,
    Scores,
    ScoringContext,
)
from loopml.sdk.workload import EvalOutput, TrainOutput, Workload
from loopml.stages.runner import run_stage

#: The value of ``LOOPML_PLUGINS`` that registers it.
PLUGIN = "toy=toy_workload:ToyWorkload"


class ToyModel(PythonModel):
    """y = slope * x."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"y": model_input["x"] * self.slope})


class ToyRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: float = Field(ge=-100, le=100)
    tag: str | None = None


class ToyScorer(OnlineScorer):
    row = ToyRow
    outputs = (Output("y", "FP64"), Output("digits", "INT64", per_row=2))

    def score(self, model: Any, rows: Sequence[Any], context: ScoringContext) -> Scores:
        bad = [(i, "x", "13 is unlucky", r.x) for i, r in enumerate(rows) if r.x == 13]
        if bad:
            raise InvalidRowsError(bad)
        y = [model.slope * r.x for r in rows]
        return Scores(
            columns={
                "y": y,
                "digits": [[int(abs(v)) // 10, int(abs(v)) % 10] for v in y],
                "tag": [r.tag for r in rows],
            },
            extra={"slope": model.slope},
        )

    def example_rows(self, model: Any) -> list[dict[str, Any]]:
        return [{"x": 1.5}]


class ToyWorkload(Workload):
    """A line through the origin (a test's plug-in)."""

    name = "toy"
    primary_metric = "mae"
    higher_is_better = False
    key_metrics = ("mae",)

    def load_raw(self, settings: Settings) -> pd.DataFrame:
        days = pd.date_range("2025-01-01", periods=4, freq="D")
        return pd.DataFrame({"date": days, "x": [1.0, 2.0, 3.0, 4.0]})

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        return raw

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        return TrainOutput(ToyModel(2.0), {"slope": 2.0}, data[["x"]].head(2))

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        return EvalOutput({"mae": 0.0})

    def online_scorer(self) -> OnlineScorer:
        return ToyScorer()


def toy_champion() -> Settings:
    """Train ``toy`` (with ``LOOPML_PLUGINS`` set) and make version 1 champion."""
    settings = load_settings("default")
    for stage in ("ingest", "validate", "train"):
        run_stage(stage, settings, "toy")
    set_alias("toy", CHAMPION, "1")
    return settings
