"""Evaluate: backtest model and baseline, log both to the training run."""

from __future__ import annotations

import logging

import mlflow
from mlflow import MlflowClient

from loopml.core.config import Settings
from loopml.core.io import read_json, read_table, require_file, write_json
from loopml.models.tracking import setup_mlflow
from loopml.sdk.workload import Workload, get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)


def baseline_scores(workload: Workload, metrics: dict[str, float]) -> dict[str, float]:
    """Each declared baseline's primary metric found in ``metrics``."""
    key = workload.primary_metric
    return {
        b: metrics[f"{b}_{key}"] for b in workload.baselines if f"{b}_{key}" in metrics
    }


def run(settings: Settings, workload_name: str) -> StageResult:
    """Evaluate the workload on a rolling-origin backtest and log the results.

    The metrics are logged to the run that trained the registered candidate,
    and as tags on its model version, so the registry shows them.
    """
    workload = get_workload(workload_name)
    trained = read_json(settings.state_dir(workload_name) / "train.json", "train")
    data_path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    data = read_table(data_path, "validate")
    setup_mlflow(settings)
    output = workload.evaluate(settings, data)
    baselines = baseline_scores(workload, output.metrics)
    with mlflow.start_run(run_id=trained["run_id"]):
        mlflow.log_metrics(output.metrics)
        for name, figure in output.figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        for name, table in output.tables.items():
            mlflow.log_table(table, f"tables/{name}.json")
    client = MlflowClient()
    primary = workload.primary_metric
    keys = [*workload.key_metrics, *(f"{b}_{primary}" for b in baselines)]
    # What `loopml status` shows, readable from the registry alone.
    described = {
        "loopml.primary_metric": primary,
        "loopml.baselines": ",".join(baselines),
        "loopml.key_metrics": ",".join(
            k for k in workload.key_metrics if k in output.metrics
        ),
    }
    for tag, value in described.items():
        client.set_model_version_tag(workload_name, trained["version"], tag, value)
    for key in dict.fromkeys(keys):
        if key in output.metrics:
            client.set_model_version_tag(
                workload_name,
                trained["version"],
                f"metric.{key}",
                f"{output.metrics[key]:.6g}",
            )
    details = {"version": trained["version"], "run_id": trained["run_id"]}
    write_json(
        {**details, "metrics": output.metrics, "baselines": baselines},
        settings.state_dir(workload_name) / "evaluate.json",
    )
    shown = {k: output.metrics[k] for k in workload.key_metrics if k in output.metrics}
    summary = ", ".join(f"{k}={v:.3f}" for k, v in shown.items())
    log.info("evaluated version %s: %s", trained["version"], summary)
    return StageResult(
        "evaluate", workload_name, summary=summary, metrics=shown, details=details
    )
