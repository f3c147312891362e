"""The local runner: every stage in order, stopping at the first failure."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import write_json
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
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)

StageFn = Callable[[Settings, str], StageResult]

STAGES: dict[str, StageFn] = {
    "ingest": ingest.run,
    "validate": validate.run,
    "features": features.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "promote": promote.run,
    # The champion's daily top-k (recsys); skipped for other workloads.
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
    """Run one stage with logging of its start, outcome and duration."""
    with stage_context(name):
        log.info("start %s for %s", name, workload)
        started = time.perf_counter()
        if name in TUNED_STAGES:
            settings = tune.apply_tuned(settings, workload)
        stage = STAGES.get(name) or OPTIONAL_STAGES[name]
        result = stage(settings, workload)
        seconds = time.perf_counter() - started
        log.info("done %s in %.1fs: %s", name, seconds, result.summary)
    return TimedResult(result, seconds)


def run_loop(
    settings: Settings,
    workloads: list[str],
    on_stage: Callable[[TimedResult], None] | None = None,
    tune_first: bool = False,
) -> list[TimedResult]:
    """Run every stage for every workload; stop a workload at its first failure.

    Args:
        settings: the active settings.
        workloads: names of the workloads to run.
        on_stage: called after each stage (for progress output).
        tune_first: run the ``tune`` stage before ``train``.

    Returns:
        The timed results, failed stages included (status ``failed``).
    """
    names = list(STAGES)
    if tune_first:
        names.insert(names.index("train"), "tune")
    results: list[TimedResult] = []
    for workload in workloads:
        started = dt.datetime.now(dt.UTC)
        mine: list[TimedResult] = []
        for name in names:
            try:
                timed = run_stage(name, settings, workload)
            except (StageError, FileNotFoundError, ValueError) as error:
                failed = StageResult(name, workload, "failed", str(error))
                timed = TimedResult(failed, 0.0)
            mine.append(timed)
            if on_stage:
                on_stage(timed)
            if timed.result.status == "failed":
                break
        results.extend(mine)
        write_json(
            {
                "started": started.isoformat(timespec="seconds"),
                "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "ok": all(t.result.status != "failed" for t in mine),
                "stages": [
                    {**asdict(t.result), "seconds": round(t.seconds, 2)} for t in mine
                ],
            },
            settings.state_dir(workload) / "last_run.json",
        )
    return results
