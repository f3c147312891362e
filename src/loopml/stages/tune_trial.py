"""One Ray Tune trial of ``loopml tune``, kept apart for a light worker start.

Ray imports the module of a trainable in every trial actor. This one needs
only Ray Tune, the settings and the workload contract: no MLflow (the driver
logs the trial runs, see ``stages/tune.py``), so a trial actor starts without
importing the tracking stack.

A trial reports, besides the workload's metrics at the top level (which the
search algorithm and the scheduler read), a ``loopml`` entry: the metrics to
log, the step and the trial's own clock, for the driver's MLflow callback.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loopml.core.runtime import configure_environment
from loopml.sdk.workload import get_workload

if TYPE_CHECKING:
    import pandas as pd

    from loopml.core.config import Settings

#: The result entry the driver's MLflow callback reads.
RESULT_KEY = "loopml"
#: The tag of a trial's MLflow run: its Ray Tune trial id.
TRIAL_TAG = "loopml.tune.trial_id"


def trial(
    config: dict[str, Any],
    settings: Settings,
    workload_name: str,
    data: pd.DataFrame,
) -> None:
    """Score one configuration, reporting each of the workload's steps."""
    from ray import tune

    configure_environment(settings.home)
    started = time.perf_counter()

    def report(step: int, metrics: dict[str, float]) -> None:
        values = {
            **{k: float(v) for k, v in metrics.items()},
            "trial_seconds": time.perf_counter() - started,
        }
        entry = {"metrics": values, "step": step, "time_ms": int(time.time() * 1000)}
        tune.report({**values, RESULT_KEY: entry})

    get_workload(workload_name).tune_objective(settings, data, config, report)
