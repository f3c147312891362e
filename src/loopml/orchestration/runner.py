"""The local runner: every stage in order, stopping at the first failure.

``run_stage`` and ``STAGES`` live in ``loopml.stages.runner`` (a retrain runs
stages too); this module strings them into the loop of ``loopml run``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import write_json
from loopml.stages.common import StageResult
from loopml.stages.runner import STAGES, TimedResult, run_stage

log = logging.getLogger(__name__)


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
