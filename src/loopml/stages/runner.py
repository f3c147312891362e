"""Every stage by name, and how one runs: logged, timed, tuned parameters applied."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from loopml.core.config import Settings
from loopml.core.logs import stage_context
from loopml.stages.common import StageResult, database_errors

log = logging.getLogger(__name__)

StageFn = Callable[[Settings, str], StageResult]

#: Each stage, in the loop's order: its module in ``loopml.stages`` and the
#: function that runs it. A module is imported only when its stage runs, so
#: ``loopml ingest`` does not pay for MLflow, Feast or LightGBM.
STAGES: dict[str, tuple[str, str]] = {
    "ingest": ("ingest", "run"),
    "validate": ("validate", "run"),
    "features": ("features", "run"),
    "train": ("train", "run"),
    "evaluate": ("evaluate", "run"),
    "promote": ("promote", "run"),
    # The champion's results for every entity (its batch scorer), stored.
    "batch": ("batch", "run"),
    # Drift, quality and live performance of the champion on the last day.
    "monitor": ("monitor", "run_in_loop"),
}
#: Run only when asked (``loopml tune``, ``loopml run --tune``), before train.
OPTIONAL_STAGES: dict[str, tuple[str, str]] = {"tune": ("tune", "run")}
#: Stages that use the best parameters of the last tuning run, if any.
TUNED_STAGES = ("train", "evaluate")


def stage_function(name: str) -> StageFn:
    """The function that runs stage ``name``, its module imported now.

    Raises:
        KeyError: ``name`` is not a stage.
    """
    module, function = STAGES.get(name) or OPTIONAL_STAGES[name]
    stage: StageFn = getattr(
        importlib.import_module(f"loopml.stages.{module}"), function
    )
    return stage


@dataclass
class TimedResult:
    """A stage result with its wall time."""

    result: StageResult
    seconds: float


def run_stage(name: str, settings: Settings, workload: str) -> TimedResult:
    """Run one stage with logging of its start, outcome and duration.

    Raises:
        StageError: what the stage raises, and a lost database connection.
    """
    with stage_context(name), database_errors(name):
        log.info("start %s for %s", name, workload)
        started = time.perf_counter()
        if name in TUNED_STAGES:
            from loopml.stages.tune import apply_tuned

            settings = apply_tuned(settings, workload)
        result = stage_function(name)(settings, workload)
        seconds = time.perf_counter() - started
        log.info("done %s in %.1fs: %s", name, seconds, result.summary)
    return TimedResult(result, seconds)
