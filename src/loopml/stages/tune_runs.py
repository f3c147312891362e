"""The driver's MLflow record of ``loopml tune``'s trials: one nested run each.

A Ray Tune callback, imported only when tuning (it imports Ray Tune). The
trials report their metrics, step and clock in the ``loopml`` entry of their
results (see ``stages/tune_trial.py``); the driver logs them under the tuning
run, so trial actors need no MLflow client, and on a cluster no access to the
tracking server.
"""

from __future__ import annotations

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

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        """Open the trial's run under the parent, with its parameters."""
        trial_id = str(trial.trial_id)
        run_id = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.workload_name}-trial-{trial_id}",
            tags={
                MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                TRIAL_TAG: trial_id,
                "loopml.workload": self.workload_name,
                "loopml.stage": "tune-trial",
            },
        ).info.run_id
        self.run_ids[trial_id] = run_id
        params = [Param(k, str(v)) for k, v in (trial.config or {}).items()]
        self.client.log_batch(run_id, params=params)

    def on_trial_result(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        result: dict[str, Any],
        **info: Any,
    ) -> None:
        """Log one step's metrics, stamped with the trial's own clock."""
        run_id = self.run_ids.get(str(trial.trial_id))
        entry = result.get(RESULT_KEY)
        if run_id is None or not isinstance(entry, dict):
            return
        step, stamp = int(entry["step"]), int(entry["time_ms"])
        metrics = [
            Metric(k, float(v), stamp, step) for k, v in entry["metrics"].items()
        ]
        self.client.log_batch(run_id, metrics=metrics)

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
        run_id = self.run_ids.get(str(trial.trial_id))
        if run_id is not None:
            self.client.set_terminated(run_id, status)
