"""The interface every workload implements, and how the platform finds one.

A workload is one business problem (demand forecasting, recommendations, a
user's churn model): its data, schema, features, models and evaluation. The
platform's stages (ingest .. retrain), serving, batch, monitoring, tuning,
replay, the CLI and the DAGs only talk to this interface and to the optional
capabilities a workload declares (``loopml.sdk.capabilities``), so adding a
workload touches only its own folder.

Workloads are found as entry points of the ``loopml.workloads`` group (the
built-in ones too; see ``loopml.core.plugins``), e.g. in a ``pyproject.toml``::

    [project.entry-points."loopml.workloads"]
    churn = "acme.churn.workload:ChurnWorkload"
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from loopml.core import plugins
from loopml.sdk.batch import BatchSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.pyfunc.model import PythonModel
    from pydantic import BaseModel

    from loopml.core.config import Settings
    from loopml.sdk.capabilities import (
        BatchScorer,
        DaySource,
        FeatureViews,
        Monitor,
        OnlineScorer,
    )
    from loopml.sdk.tuning import Report, SearchParam

log = logging.getLogger(__name__)

#: The one baseline of a workload that declares no ``baselines``.
BASELINE_NAME = "baseline"


def workload_names() -> list[str]:
    """The registered workloads (entry points, then ``LOOPML_PLUGINS``)."""
    return plugins.names()


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
    #: the metric the promotion gate compares.
    primary_metric: str
    higher_is_better: bool
    #: metrics shown by ``loopml status`` and the run summary.
    key_metrics: tuple[str, ...]
    #: the workload's settings class (a ``WorkloadSettings``), validated
    #: under ``workloads.<name>:``; None: the workload has no settings.
    settings_class: ClassVar[type[BaseModel] | None] = None
    #: how the raw table is cut into days (``loopml ingest --date``), ordered
    #: and pseudonymised; its ``time_column`` is the data's clock everywhere.
    batch_spec: ClassVar[BatchSpec] = BatchSpec()

    #: the setting names (of its section) each stage reads, e.g. ``{"train":
    #: ("horizon", "model")}``, so DVC re-runs only the stages a changed
    #: parameter affects; None: every stage reads the whole section.
    stage_params: ClassVar[Mapping[str, tuple[str, ...]] | None] = None

    # Optional capabilities: None means "not offered"; the platform says so
    # ("shop has no batch scorer: nothing to do") instead of failing.

    def feature_views(self) -> FeatureViews | None:
        """Feast objects and how they are built from validated data."""
        return None

    def online_scorer(self) -> OnlineScorer | None:
        """Request/response schemas and the scoring of every protocol."""
        return None

    def batch_scorer(self) -> BatchScorer | None:
        """The daily batch: what it scores for every entity, and its output."""
        return None

    def monitor(self) -> Monitor | None:
        """Drift columns, quality and live performance for ``loopml monitor``."""
        return None

    def day_source(self) -> DaySource | None:
        """New days of the source, for ``loopml ingest --date`` and ``replay``."""
        return None

    def models(self) -> Mapping[str, Callable[[], Any]]:
        """Every model class of the workload (baselines too), by name.

        One parametrised test holds them all to the model contract
        (``loopml.sdk.contract``).
        """
        return {}

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

    #: the simple alternatives the model must beat, by name: ``evaluate``
    #: reports ``<name>_<metric>`` for each (and ``baseline_<metric>`` for
    #: the strongest), ``holdout_metrics`` scores each under its name, and
    #: the gate refuses a challenger below the strongest.
    baselines: ClassVar[tuple[str, ...]] = (BASELINE_NAME,)
    #: guard metrics the gate protects: name -> whether higher is better.
    guard_metrics: ClassVar[dict[str, bool]] = {}
    #: prefix of the per-slice metrics (store, segment) the gate protects.
    slice_prefix: str = ""
    #: prefix of each slice's size (``<this><slice name>``: rows or users in
    #: the slice); when set, the gate does not judge a slice smaller than
    #: ``gate.min_slice_size`` (its mean is noise) and says so.
    slice_size_prefix: str = ""
    #: prefix of the primary metric per group of a sensitive attribute (age
    #: band...): the gate refuses a challenger whose worst group is more than
    #: ``gate.max_group_gap`` (relative) below its best, and the model card
    #: shows each group; empty: no inclusion check.
    group_prefix: str = ""
    #: prefix of each group's size (``<this><group name>``); when set, groups
    #: smaller than ``gate.min_slice_size`` are not compared.
    group_size_prefix: str = ""
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
        """Score registered models and every baseline on the latest holdout.

        ``train`` must stop before that holdout, so that no model scored
        here has seen it.

        Args:
            settings: the active settings.
            data: the validated table.
            models: python models (unwrapped pyfuncs) by name.

        Returns:
            Metrics per name, plus one entry per name in :attr:`baselines`.
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

    def current_params(self, settings: Settings) -> dict[str, Any]:
        """The values ``settings`` give the :meth:`search_space` parameters.

        ``loopml tune`` scores them on the trials' folds and keeps them when
        no trial beats them (a tuned configuration never makes things
        worse). Empty: unknown, and the best trial is kept as it is.
        """
        return {}

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
    """Instantiate a registered workload by name.

    Raises:
        UnknownWorkloadError: (a ``ValueError``) naming the registered ones.
        TypeError: when the entry point is not a ``Workload`` subclass.
    """
    cls = plugins.load_class(name)
    workload = cls()
    if not isinstance(workload, Workload):
        raise TypeError(f"workload {name!r} ({cls.__qualname__}) is not a Workload")
    if workload.name != name:
        raise TypeError(
            f"workload registered as {name!r} calls itself {workload.name!r}"
        )
    return workload
