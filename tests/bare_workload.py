"""Tiny workloads without optional capabilities, registered by the tests through
``LOOPML_PLUGINS`` (see :data:`PLUGINS`): the platform must say "nothing to
do" for what they lack, never crash.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from loopml.core.config import Settings
from loopml.sdk.capabilities import DaySource, LoadDaySource
from loopml.sdk.workload import EvalOutput, TrainOutput, Workload

#: The value of ``LOOPML_PLUGINS`` that registers both workloads.
PLUGINS = "bare=bare_workload:BareWorkload,daily=bare_workload:DailyWorkload"
START = pd.Timestamp("2025-01-01")


class MeanModel(PythonModel):
    """Predicts the training mean."""

    def __init__(self, mean: float) -> None:
        self.mean = mean

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"value": np.full(len(model_input), self.mean)})


class BareWorkload(Workload):
    """A daily value, predicted by its mean; no optional capability."""

    name = "bare"
    primary_metric = "mae"
    higher_is_better = False
    key_metrics = ("mae",)

    def load_raw(self, settings: Settings) -> pd.DataFrame:
        days = pd.date_range(START, periods=30, freq="D")
        return pd.DataFrame({"date": days, "value": np.arange(30, dtype=float)})

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        return raw

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        mean = float(data["value"].mean())
        return TrainOutput(MeanModel(mean), {"mean": mean}, data[["date"]].head(2))

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        error = float((data["value"] - data["value"].mean()).abs().mean())
        return EvalOutput({"mae": error, "baseline_mae": error})


class DailyWorkload(BareWorkload):
    """The same, with a day source that cannot drift (``load_day``)."""

    name = "daily"

    def load_day(self, settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
        return pd.DataFrame({"date": [pd.Timestamp(day)], "value": [1.0]})

    def day_source(self) -> DaySource:
        return LoadDaySource(self.load_day)
