"""Tune: search a workload's hyper-parameters with Ray Tune, every trial tracked.

Optuna proposes configurations (``OptunaSearch``), Ray runs as many trials at
once as the cluster has CPUs (``tune.max_concurrent`` caps it), and ASHA stops
the weak ones early when the objective reports more than once (demand: after
each backtest fold). Actors are reused between trials, which saves Ray's
per-trial process start-up.

MLflow: the stage opens a parent run ``<w>-tune``; every trial gets its own
run under it (tag ``mlflow.parentRunId``), logged by the driver from the
trials' results (``stages/tune_runs.py``; the stock callback does not nest
runs): the run ends FINISHED, KILLED when ASHA stopped the trial early, or
FAILED. Trial actors import neither MLflow nor the stages
(``stages/tune_trial.py``), which keeps their start-up short, and need no
access to the tracking server. After the search the stage tags every trial
run with its outcome, closes any run still open, and logs the best
configuration on the parent.

Start-up is what made Ray slower than a process pool on small machines; what
is left of it is measured in ``docs/benchmarks.md`` (tuning section).

After the search the parameters ``train`` would use now (the profile's, or
the last tuned ones) are scored on the same folds; the best trial is kept
only if it beats them, else they are (a tuning run never makes the model
worse), and both figures are logged on the parent run.

The kept configuration goes to ``<home>/state/<w>/tuned.json``, with the
data version it was tuned on;
:func:`apply_tuned` lays it over the settings of the next ``train`` and
``evaluate``, so the tuned candidate is retrained on the whole training window
and judged on the holdout like any other.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import file_hash, read_table, require_file, write_json
from loopml.core.params import PARAMS_ENV
from loopml.models.tracking import lineage_tags, setup_mlflow
from loopml.sdk.tuning import SearchParam
from loopml.sdk.workload import Workload, get_workload
from loopml.stages.common import StageResult, workload_code
from loopml.stages.tune_trial import TRIAL_TAG

if TYPE_CHECKING:
    from ray.tune import ResultGrid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parent:
    """What a trial needs to log under the tuning run."""

    run_id: str
    experiment_id: str
    tracking_uri: str


def tuned_path(settings: Settings, workload_name: str) -> Path:
    """Where the best configuration of the last tuning run is kept."""
    return settings.state_dir(workload_name) / "tuned.json"


def ray_search_space(space: dict[str, SearchParam]) -> dict[str, Any]:
    """Ray Tune domains for a workload's :class:`SearchParam` ranges."""
    from ray import tune

    domains: dict[str, Any] = {}
    for name, p in space.items():
        if p.kind == "int":
            # Ray's integer upper bounds are exclusive; ours are inclusive.
            sampler = tune.lograndint if p.log else tune.randint
            domains[name] = sampler(int(p.low), int(p.high) + 1)
        else:
            domains[name] = (tune.loguniform if p.log else tune.uniform)(p.low, p.high)
    return domains


def search(
    settings: Settings,
    workload: Workload,
    data: pd.DataFrame,
    parent: Parent,
    concurrency: int,
    *,
    points: list[dict[str, Any]] | None = None,
    early_stopping: bool = True,
) -> ResultGrid:
    """Run the Ray Tune search in the running Ray and return its results.

    Args:
        settings: ``tune`` says how many trials, their CPUs and ASHA's factor.
        workload: what is tuned.
        data: the validated table, put in Ray's object store once.
        parent: the MLflow run the trial runs nest under.
        concurrency: trials at once.
        points: evaluate exactly these configurations (Optuna's
            ``points_to_evaluate``, one trial each) instead of
            ``tune.num_samples`` proposed ones (``benchmarks/tuning.py``).
        early_stopping: ASHA stops weak trials between steps.
    """
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from loopml.stages.tune_runs import TrialRuns
    from loopml.stages.tune_trial import trial

    # Progress goes to the log and MLflow: silence Optuna's and Tune's console
    # output (Tune's newer reporter prints a banner even at verbose=0).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ctrl-C stops the command (exit 130, tuned.json untouched): Tune's own
    # handler would end the search early and return it as if it were whole,
    # and `loopml run` would go on to train and promote from it.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    cfg = settings.tune
    steps = workload.tune_steps(settings)
    mode = "max" if workload.higher_is_better else "min"
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=steps,
            grace_period=1,
            reduction_factor=cfg.reduction_factor,
        )
        if steps > 1 and early_stopping
        else None
    )
    # The data goes to the object store once; each trial actor fetches it
    # once and keeps it across the trials it runs (reuse_actors).
    trainable = tune.with_resources(
        tune.with_parameters(
            trial, settings=settings, workload_name=workload.name, data=data
        ),
        {"cpu": cfg.cpus_per_trial},
    )
    runs = TrialRuns(
        MlflowClient(tracking_uri=parent.tracking_uri),
        parent.experiment_id,
        parent.run_id,
        workload.name,
        steps,
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    tuner = tune.Tuner(
        trainable,
        param_space=ray_search_space(workload.search_space(settings)),
        tune_config=tune.TuneConfig(
            metric=workload.primary_metric,
            mode=mode,
            search_alg=OptunaSearch(seed=settings.seed, points_to_evaluate=points),
            scheduler=scheduler,
            num_samples=len(points) if points else cfg.num_samples,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"{workload.name}-{stamp}",
            storage_path=str(settings.home / "ray_results"),
            verbose=0,
            callbacks=[runs],
        ),
    )
    return tuner.fit()


def _trial_table(
    results: ResultGrid, metric: str, steps: int, names: list[str]
) -> pd.DataFrame:
    """One row per trial: id, status, steps done, metric and parameters."""
    rows = []
    for index in range(len(results)):
        result = results[index]
        metrics, config = result.metrics or {}, result.config or {}
        done = int(metrics.get("training_iteration", 0))
        if result.error is not None:
            status = "failed"
        else:
            status = "completed" if done >= steps else "stopped_early"
        rows.append(
            {
                "trial_id": metrics.get("trial_id"),
                "status": status,
                "steps": done,
                metric: metrics.get(metric, float("nan")),
                **{name: config.get(name) for name in names},
                "error": "" if result.error is None else str(result.error)[:500],
            }
        )
    return pd.DataFrame(rows)


def _close_trial_runs(client: MlflowClient, parent: Parent, table: pd.DataFrame) -> int:
    """Tag every nested run with its outcome and end those Ray cut short.

    Tune ends a trial inside its last ``tune.report`` (ASHA's last rung, or an
    early stop), so such runs are still RUNNING: they end at their last metric.

    Returns:
        How many nested runs the parent has.
    """
    status_of = dict(zip(table["trial_id"], table["status"], strict=True))
    runs = client.search_runs(
        [parent.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.run_id}'",
    )
    closed = 0
    for run in runs:
        run_id = run.info.run_id
        trial_status = status_of.get(run.data.tags.get(TRIAL_TAG), "failed")
        client.set_tag(run_id, "loopml.tune.status", trial_status)
        if run.info.status != "RUNNING":
            continue
        mlflow_status = {"completed": "FINISHED", "stopped_early": "KILLED"}.get(
            trial_status, "FAILED"
        )
        history = client.get_metric_history(run_id, "trial_seconds")
        ended = max((m.timestamp for m in history), default=None)
        client.set_terminated(run_id, mlflow_status, end_time=ended)
        closed += 1
    log.info("%d nested trial runs, %d closed after the search", len(runs), closed)
    return len(runs)


def _interrupted(client: MlflowClient, parent: Parent) -> None:
    """Mark a search stopped by Ctrl-C: the parent run and its trials' runs."""
    log.warning("tuning interrupted: tuned.json left as it was")
    client.set_tag(parent.run_id, "loopml.tune.status", "interrupted")
    runs = client.search_runs(
        [parent.experiment_id],
        filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent.run_id}'",
    )
    for run in runs:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")


def run(settings: Settings, workload_name: str) -> StageResult:
    """Search the workload's hyper-parameters; keep the best in ``tuned.json``.

    Raises:
        StageError: when the workload cannot be tuned, or no trial completed.
    """
    workload = get_workload(workload_name)
    try:
        space = workload.search_space(settings)
    except NotImplementedError as error:
        raise StageError(str(error)) from error
    data_path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    data = read_table(data_path, "validate")
    metric, steps = workload.primary_metric, workload.tune_steps(settings)
    experiment_id = setup_mlflow(settings)
    from loopml.core.ray_session import ray_session

    started = time.perf_counter()
    with mlflow.start_run(run_name=f"{workload_name}-tune") as active:
        parent = Parent(active.info.run_id, experiment_id, settings.tracking_uri)
        tags = lineage_tags(data_path, workload_code(workload_name))
        mlflow.set_tags({**tags, "loopml.workload": workload_name})
        mlflow.set_tag("loopml.stage", "tune")
        with ray_session(settings) as cpus:
            concurrency = settings.tune.max_concurrent or max(
                1, int(cpus // settings.tune.cpus_per_trial)
            )
            mlflow.log_params(
                {
                    "num_samples": settings.tune.num_samples,
                    "max_concurrent": concurrency,
                    "metric": metric,
                    "steps": steps,
                    "search_space": json.dumps(
                        {k: vars(v) for k, v in space.items()}, sort_keys=True
                    ),
                }
            )
            log.info(
                "tuning %s: %d trials, %d at once, %s over %d step(s)",
                workload_name,
                settings.tune.num_samples,
                concurrency,
                metric,
                steps,
            )
            try:
                results = search(settings, workload, data, parent, concurrency)
            except KeyboardInterrupt:
                _interrupted(MlflowClient(), parent)
                raise
        seconds = time.perf_counter() - started
        table = _trial_table(results, metric, steps, list(space))
        n_runs = _close_trial_runs(MlflowClient(), parent, table)
        mlflow.log_table(table, "tuning/trials.json")
        completed = table[table["status"] == "completed"].dropna(subset=[metric])
        counts = {str(k): int(v) for k, v in table["status"].value_counts().items()}
        if completed.empty:
            errors = "; ".join(table["error"].loc[table["error"] != ""].head(2))
            raise StageError(f"no tuning trial completed: {errors or 'no results'}")
        best = completed.sort_values(metric, ascending=not workload.higher_is_better)
        best_row = best.iloc[0]
        params = {
            name: int(best_row[name]) if p.kind == "int" else float(best_row[name])
            for name, p in space.items()
        }
        best_value = float(best_row[metric])
        # Never worse: the parameters train would use now, on the same folds.
        incumbent = workload.current_params(apply_tuned(settings, workload_name))
        incumbent_value = (
            float(workload.tune_objective(settings, data, incumbent))
            if incumbent
            else None
        )
        kept = "tuned"
        if incumbent_value is not None and not workload.beats(
            best_value, incumbent_value
        ):
            kept, params, best_value = "current", dict(incumbent), incumbent_value
        mlflow.log_params({f"best_{k}": v for k, v in params.items()})
        mlflow.log_param("kept", kept)
        mlflow.log_metrics(
            {
                f"best_{metric}": best_value,
                f"best_trial_{metric}": float(best_row[metric]),
                "n_trials": float(len(table)),
                "n_stopped_early": float(counts.get("stopped_early", 0)),
                "n_failed": float(counts.get("failed", 0)),
                "tune_seconds": seconds,
            }
            | (
                {f"current_{metric}": incumbent_value}
                if incumbent_value is not None
                else {}
            )
        )
    record = {
        "workload": workload_name,
        "metric": metric,
        "value": best_value,
        "params": params,
        "kept": kept,
        "best_trial_value": float(best_row[metric]),
        "current_params": incumbent,
        "current_value": incumbent_value,
        "parent_run_id": parent.run_id,
        "trial_id": str(best_row["trial_id"]),
        "n_trials": len(table),
        "status_counts": counts,
        "data_version": tags["loopml.data_version"],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_json(record, tuned_path(settings, workload_name))
    shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
    summary = (
        f"best {metric}={float(best_row[metric]):.4f} of {len(table)} trials "
        f"({counts.get('stopped_early', 0)} stopped early, {n_runs} nested runs) "
        f"in {seconds:.0f}s"
    )
    if incumbent_value is not None:
        summary += f", current parameters {incumbent_value:.4f}"
    summary += (
        f"; kept the current parameters (no trial beat them): {shown}"
        if kept == "current"
        else f"; kept the best trial: {shown}"
    )
    log.info("tuned %s: %s", workload_name, summary)
    return StageResult(
        "tune",
        workload_name,
        summary=summary,
        metrics={f"best_{metric}": best_value},
        details=record,
    )


def can_tune(settings: Settings, workload_name: str) -> bool:
    """Whether the workload declares a search space."""
    try:
        get_workload(workload_name).search_space(settings)
    except NotImplementedError:
        return False
    return True


def tuned_on(settings: Settings, workload_name: str) -> str | None:
    """Why ``loopml run`` need not tune now, or ``None`` when it should.

    Returns:
        A reason to skip: ``tuned.json`` was made on the data version
        ``validate`` wrote last (or DVC pins the parameters).
    """
    if os.environ.get(PARAMS_ENV):
        return f"{PARAMS_ENV} pins the parameters (params.yaml)"
    path = tuned_path(settings, workload_name)
    data_path = settings.data_dir(workload_name) / "validated.parquet"
    if not path.is_file() or not data_path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("data_version") != file_hash(data_path):
        return None
    return (
        f"parameters tuned on this data version reused ({record.get('metric')} "
        f"{record.get('value', float('nan')):.4f}, {path.name})"
    )


def apply_tuned(settings: Settings, workload_name: str) -> Settings:
    """The settings with the last tuning run's best parameters, if any.

    ``tuned.json`` is ignored (with a warning) when ``LOOPML_PARAMS_FILE`` is
    set: under DVC, ``params.yaml`` must say what ran.

    Args:
        settings: the active settings.
        workload_name: the workload about to train or evaluate.

    Returns:
        ``settings`` unchanged when there is nothing to apply, else a copy.
    """
    path = tuned_path(settings, workload_name)
    if not path.is_file():
        return settings
    if os.environ.get(PARAMS_ENV):
        log.warning(
            "ignoring %s: %s pins the parameters; copy the tuned values into "
            "params.yaml to use them",
            path,
            PARAMS_ENV,
        )
        return settings
    record = json.loads(path.read_text(encoding="utf-8"))
    log.info(
        "using the parameters tuned by run %s: %s",
        record.get("parent_run_id"),
        record["params"],
    )
    return get_workload(workload_name).with_params(settings, record["params"])
