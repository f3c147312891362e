"""The local runner: every stage in order, stopping at the first failure."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from loopml.config import Settings
from loopml.logs import stage_context
from loopml.stages import evaluate, ingest, promote, train, validate
from loopml.stages.common import StageError, StageResult, write_json

log = logging.getLogger(__name__)

StageFn = Callable[[Settings, str], StageResult]

STAGES: dict[str, StageFn] = {
    "ingest": ingest.run,
    "validate": validate.run,
    "train": train.run,
    "evaluate": evaluate.run,
    "promote": promote.run,
}


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
        result = STAGES[name](settings, workload)
        seconds = time.perf_counter() - started
        log.info("done %s in %.1fs: %s", name, seconds, result.summary)
    return TimedResult(result, seconds)


def run_loop(
    settings: Settings,
    workloads: list[str],
    on_stage: Callable[[TimedResult], None] | None = None,
) -> list[TimedResult]:
    """Run every stage for every workload; stop a workload at its first failure.

    Args:
        settings: the active settings.
        workloads: names of the workloads to run.
        on_stage: called after each stage (for progress output).

    Returns:
        The timed results, failed stages included (status ``failed``).
    """
    results: list[TimedResult] = []
    for workload in workloads:
        started = dt.datetime.now(dt.UTC)
        mine: list[TimedResult] = []
        for name in STAGES:
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
