"""The interface every workload implements, and the workload registry.

A workload is one business problem (``demand``, later ``recsys``): its data,
schema, features, models and evaluation. The platform stages (ingest,
validate, train, evaluate, promote, serve) only talk to this interface, so a
new workload touches only its own folder plus one line in ``WORKLOADS``.

Other packages add workloads without touching loopml (a project made by
``loopml new`` does): an entry point in the ``loopml.workloads`` group, e.g.
``[project.entry-points."loopml.workloads"] churn = "acme.churn:ChurnWorkload"``
in their ``pyproject.toml``, or ``LOOPML_WORKLOADS=churn=acme.churn:ChurnWorkload``
(comma-separated) for code that is not installed. Built-in names win.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.pyfunc.model import PythonModel

    from loopml.core.config import Settings
    from loopml.sdk.tuning import Report, SearchParam

WORKLOADS: dict[str, str] = {
    "demand": "loopml.workloads.demand.workload:DemandWorkload",
    "recsys": "loopml.workloads.recsys.workload:RecsysWorkload",
}
#: The entry-point group (and environment variable) of plug-in workloads.
PLUGIN_GROUP = "loopml.workloads"
PLUGIN_ENV = "LOOPML_WORKLOADS"
_BUILTIN = frozenset(WORKLOADS)

log = logging.getLogger(__name__)


def plugin_workloads(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Workloads registered from outside loopml, name -> ``"module:Class"``.

    Entry points of the ``loopml.workloads`` group first, then the
    ``LOOPML_WORKLOADS`` variable (``name=module:Class,...``); built-in names
    are never replaced.

    Raises:
        ValueError: for a ``LOOPML_WORKLOADS`` item that is not ``name=mod:Class``.
    """
    found = {
        ep.name: ep.value for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)
    }
    listed = (os.environ if environ is None else environ).get(PLUGIN_ENV, "")
    for item in filter(None, (part.strip() for part in listed.split(","))):
        name, _, target = (s.strip() for s in item.partition("="))
        if not name.isidentifier() or ":" not in target:
            raise ValueError(
                f"{PLUGIN_ENV} item {item!r} is not like name=package.module:Class"
            )
        found[name] = target
    for name in found.keys() & _BUILTIN:
        log.warning("plug-in workload %r ignored: the name is built in", name)
    return {k: v for k, v in found.items() if k not in _BUILTIN}


WORKLOADS.update(plugin_workloads())


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
    #: Feast feature views ``train`` reads its training set from (recorded
    #: with the MLflow run); empty for a workload that builds its own.
    feature_views: tuple[str, ...] = ()

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

    # The promotion gate (``loopml.models.gate``): fresh scores on the latest holdout.

    #: guard metrics the gate protects: name -> whether higher is better.
    guard_metrics: ClassVar[dict[str, bool]] = {}
    #: prefix of the per-slice metrics (store, segment) the gate protects.
    slice_prefix: str = ""
    #: the model card's "Intended use" and "Limits" sections.
    intended_use: str = "Not described by the workload."
    limitations: str = "Not described by the workload."

    @property
    def description(self) -> str:
        """One line on what the workload predicts (the class docstring)."""
        return (type(self).__doc__ or self.name).strip().splitlines()[0]

    def holdout_metrics(
        self, settings: Settings, data: pd.DataFrame, models: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        """Score registered models and the baseline on the latest holdout.

        ``train`` must stop before that holdout, so that no model scored
        here has seen it.

        Args:
            settings: the active settings.
            data: the validated table.
            models: python models (unwrapped pyfuncs) by name.

        Returns:
            Metrics per name, plus ``baseline``.
        """
        raise NotImplementedError(f"the {self.name} workload has no holdout gate")

    def check_model(
        self, settings: Settings, model: Any, example: pd.DataFrame | None
    ) -> list[str]:
        """Smoke tests of a model before promotion; the problems found."""
        return []

    # Tuning (``loopml tune``). A workload that cannot be tuned keeps these
    # defaults; the objective reports ``primary_metric``.

    def search_space(self, settings: Settings) -> dict[str, SearchParam]:
        """The hyper-parameters ``loopml tune`` searches, by name.

        Raises:
            NotImplementedError: when the workload cannot be tuned.
        """
        raise NotImplementedError(f"the {self.name} workload does not support tuning")

    def with_params(self, settings: Settings, params: Mapping[str, Any]) -> Settings:
        """Settings whose model section uses ``params`` (names of the space).

        Raises:
            NotImplementedError: when the workload cannot be tuned.
        """
        raise NotImplementedError(f"the {self.name} workload does not support tuning")

    def tune_steps(self, settings: Settings) -> int:
        """How many times ``tune_objective`` reports (ASHA's rungs)."""
        return 1

    def tune_objective(
        self,
        settings: Settings,
        data: pd.DataFrame,
        params: Mapping[str, Any],
        report: Report | None = None,
    ) -> float:
        """Score ``params`` on a time split that ends before the holdout.

        Args:
            settings: the active settings (``params`` are laid over them).
            data: the validated table.
            params: one point of :meth:`search_space`.
            report: called after each of :meth:`tune_steps` steps.

        Returns:
            ``primary_metric`` of the configuration.

        Raises:
            NotImplementedError: when the workload cannot be tuned.
        """
        raise NotImplementedError(f"the {self.name} workload does not support tuning")


def get_workload(name: str) -> Workload:
    """Instantiate a workload by name.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    # Plug-ins registered after start-up (LOOPML_WORKLOADS set later) count too.
    known = WORKLOADS if name in WORKLOADS else {**plugin_workloads(), **WORKLOADS}
    if name not in known:
        raise ValueError(f"unknown workload {name!r}; choose one of {list(known)}")
    module_name, class_name = known[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    workload: Workload = cls()
    return workload
