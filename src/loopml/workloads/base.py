"""The interface every workload implements, and the workload registry.

A workload is one business problem (``demand``, later ``recsys``): its data,
schema, features, models and evaluation. The platform stages (ingest,
validate, train, evaluate, promote, serve) only talk to this interface, so a
new workload touches only its own folder plus one line in ``WORKLOADS``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.pyfunc.model import PythonModel

    from loopml.config import Settings

WORKLOADS: dict[str, str] = {
    "demand": "loopml.workloads.demand.workload:DemandWorkload",
}


@dataclass
class TrainOutput:
    """What a workload's training hands to the platform to log and register."""

    model: PythonModel
    params: dict[str, Any]
    input_example: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalOutput:
    """Evaluation metrics (model and baseline) and plots to log."""

    metrics: dict[str, float]
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


class Workload(ABC):
    """One business problem, seen by the platform's stages."""

    name: str
    #: the metric the promotion gate compares; ``baseline_<metric>`` is the bar.
    primary_metric: str
    higher_is_better: bool
    #: metrics shown by ``loopml status`` and the run summary.
    key_metrics: tuple[str, ...]

    @abstractmethod
    def load_raw(self, settings: Settings) -> pd.DataFrame:
        """Read or generate the raw table for the configured dataset."""

    @abstractmethod
    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Check the raw table; raise ``DataValidationError`` when it is bad."""

    @abstractmethod
    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit the production model on all validated data."""

    @abstractmethod
    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Backtest model and baseline the same way, never on a random split."""

    def beats(self, candidate: float, bar: float) -> bool:
        """Whether ``candidate`` is strictly better than ``bar``."""
        return candidate > bar if self.higher_is_better else candidate < bar


def get_workload(name: str) -> Workload:
    """Instantiate a workload by name.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose one of {list(WORKLOADS)}")
    module_name, class_name = WORKLOADS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    workload: Workload = cls()
    return workload
