"""The driver's MLflow record of ``loopml tune``'s trials: one nested run each.

A Ray Tune callback, imported only when tuning (it imports Ray Tune). The
trials report their metrics, step and clock in the ``loopml`` entry of their
results (see ``stages/tune_trial.py``); the driver logs them under the tuning
run, so trial actors need no MLflow client, and on a cluster no access to the
tracking server.

The writes go through one background thread, in the order the events came:
a SQLite tracking store commits (and syncs to disk) on every call, tens of
milliseconds of waiting that would otherwise hold Tune's event loop, and
with it the start of the next trial. The runs carry the times of the events
(start, step, end), not of the writes; :meth:`TrialRuns.flush` waits for the
last write and raises the first error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from ray.tune import Callback
from ray.tune.experiment import Trial

from loopml.stages.tune_trial import RESULT_KEY, TRIAL_TAG


class TrialRuns(Callback):
    """Open a nested run per trial, log its steps, end it with the trial.

    Args:
        client: the driver's MLflow client.
        experiment_id: the experiment of the tuning run.
        parent_run_id: the tuning run, parent of every trial run.
        workload_name: names the runs and tags them.
        steps: how many steps a trial that ran to the end reported.
    """

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        workload_name: str,
        steps: int,
    ) -> None:
        self.client = client
        self.experiment_id, self.parent_run_id = experiment_id, parent_run_id
        self.workload_name, self.steps = workload_name, steps
        self.run_ids: dict[str, str] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles its run configuration: leave the writer out."""
        state = self.__dict__.copy()
        state.update(_writer=None, _pending=[])
        return state

    def _submit(self, write: Callable[[], None]) -> None:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="loopml-trial-runs")
        self._pending.append(self._writer.submit(write))

    def flush(self) -> None:
        """Wait for every write; raise the first that failed."""
        pending, self._pending = self._pending, []
        try:
            for future in pending:
                future.result()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Open the trial's run under the parent, with its parameters."""
        trial_id = str(trial.trial_id)
        started = int(time.time() * 1000)
        params = [Param(k, str(v)) for k, v in (trial.config or {}).items()]

        def write() -> None:
            run_id = self.client.create_run(
                self.experiment_id,
                start_time=started,
                run_name=f"{self.workload_name}-trial-{trial_id}",
                tags={
                    MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                    TRIAL_TAG: trial_id,
                    "loopml.workload": self.workload_name,
                    "loopml.stage": "tune-trial",
                },
            ).info.run_id
            self.run_ids[trial_id] = run_id
            self.client.log_batch(run_id, params=params)

        self._submit(write)

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        """Log one step's metrics, stamped with the trial's own clock."""
        trial_id = str(trial.trial_id)
        entry = result.get(RESULT_KEY)
        if not isinstance(entry, dict):
            return
        step, stamp = int(entry["step"]), int(entry["time_ms"])
        metrics = [
            Metric(k, float(v), stamp, step) for k, v in entry["metrics"].items()
        ]

        def write() -> None:
            run_id = self.run_ids.get(trial_id)
            if run_id is not None:
                self.client.log_batch(run_id, metrics=metrics)

        self._submit(write)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """End the run: FINISHED after every step, KILLED if stopped early."""
        done = int((trial.last_result or {}).get("training_iteration", 0))
        self._end(trial, "FINISHED" if done >= self.steps else "KILLED")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """End the run of a trial that raised."""
        self._end(trial, "FAILED")

    def _end(self, trial: Trial, status: str) -> None:
        trial_id, ended = str(trial.trial_id), int(time.time() * 1000)

        def write() -> None:
            run_id = self.run_ids.get(trial_id)
            if run_id is not None:
                self.client.set_terminated(run_id, status, end_time=ended)

        self._submit(write)
