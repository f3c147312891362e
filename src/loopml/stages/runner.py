"""Every stage by name, and how one runs: logged, timed, tuned parameters applied."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from loopml.core.config import Settings
from loopml.core.logs import stage_context
from loopml.stages import (
    batch,
    evaluate,
    features,
    ingest,
    monitor,
    promote,
    train,
    tune,
    validate,
)
from loopml.stages.common import StageResult, database_errors

log = logging.getLogger(__name__)

StageFn = Callable[[Settings, str], StageResult]

STAGES: dict[str, StageFn] = {
    "ingest": ingest.run,
    "validate": validate.run,
    "features": features.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "promote": promote.run,
    # The champion's results for every entity (its batch scorer), stored.
    "batch": batch.run,
    # Drift, quality and live performance of the champion on the last day.
    "monitor": monitor.run_in_loop,
}
#: Run only when asked (``loopml tune``, ``loopml run --tune``), before train.
OPTIONAL_STAGES: dict[str, StageFn] = {"tune": tune.run}
#: Stages that use the best parameters of the last tuning run, if any.
TUNED_STAGES = ("train", "evaluate")


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
            settings = tune.apply_tuned(settings, workload)
        stage = STAGES.get(name) or OPTIONAL_STAGES[name]
        result = stage(settings, workload)
        seconds = time.perf_counter() - started
        log.info("done %s in %.1fs: %s", name, seconds, result.summary)
    return TimedResult(result, seconds)
