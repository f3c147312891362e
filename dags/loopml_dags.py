"""loopml's Airflow DAGs: the daily cycle and the weekly retrain of each workload.

``loopml_daily_<workload>``: a run is for one day, ``ds``. It starts once that
day is over (the schedule's data interval is the day, midnight to midnight
UTC) and runs ingest (that day's batch) -> validate -> features -> batch (the
champion's results for the next day; skipped by workloads without a daily
batch) -> monitor (drift and quality of that day) -> retrain (train, evaluate
and promote only when the retrain policy says so). A failing stage fails its
task and stops the run: a refused batch is quarantined by validate and
nothing downstream changes. One run at a time, since days arrive in order.

``loopml_weekly_<workload>``: train -> evaluate -> promote on all validated
data, whatever the retrain policy says; promote's gate still decides whether
the new model becomes champion. Sunday 06:00 UTC, after that night's daily
run, so the two never train the same workload at once.

The workloads are whatever the project registers (the DAG file cannot import
loopml: Airflow has its own environment): ``dags/workloads.json``, written by
``loopml workloads --json`` (``make dags``, part of ``make airflow-setup``),
else the output of that command when the file is missing. A workload gets the
tasks its capabilities allow: ``features`` only with feature views, ``batch``
only with a batch scorer, ``monitor`` only with a monitor.

Every task runs the loopml CLI of the project's own environment in a shell
(Airflow lives in ``.venv-airflow``, loopml in ``.venv``: they share no
packages). Which executable and which project folder are looked up when the
task runs, first match wins:

* the loopml executable: Airflow Variable ``loopml_bin``, else the worker's
  ``LOOPML_BIN``, else ``.venv/bin/loopml`` in ``LOOPML_PROJECT_DIR`` or
  the folder above ``dags/``;
* the project folder (the working directory, where ``configs/`` and the
  default home ``.loopml`` are): Variable ``loopml_project_dir``, else
  ``LOOPML_PROJECT_DIR``, else the folder above ``dags/``.

The task inherits the worker's environment, so ``LOOPML_HOME``,
``LOOPML_PROFILE`` and any other ``LOOPML_*`` setting reach loopml as they
are. See docs/orchestration.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, chain

#: The first day a schedule may cover (catchup is off: only the latest runs).
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

PROJECT_DIR = os.environ.get(
    "LOOPML_PROJECT_DIR", str(Path(__file__).resolve().parents[1])
)
LOOPML_BIN = os.environ.get("LOOPML_BIN", str(Path(PROJECT_DIR) / ".venv/bin/loopml"))
#: ``loopml workloads --json``, saved (see the module docstring).
WORKLOADS_FILE = Path(
    os.environ.get(
        "LOOPML_DAG_WORKLOADS", str(Path(__file__).with_name("workloads.json"))
    )
)


def registered_workloads() -> list[dict[str, Any]]:
    """The project's workloads and their capabilities, without importing loopml.

    Returns:
        One entry per workload: ``name`` and ``capabilities`` (as printed by
        ``loopml workloads --json``).

    Raises:
        RuntimeError: when neither the file nor the command gives a list.
    """
    if WORKLOADS_FILE.is_file():
        text = WORKLOADS_FILE.read_text(encoding="utf-8")
    else:
        done = subprocess.run(
            [LOOPML_BIN, "workloads", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=PROJECT_DIR,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"`loopml workloads --json` failed: {done.stderr}")
        text = done.stdout
    found = json.loads(text)
    if not isinstance(found, list):
        raise RuntimeError(f"{WORKLOADS_FILE}: expected a list of workloads")
    return [w for w in found if "error" not in w]


# The delay before the retry is Airflow's [core] default_task_retry_delay
# (5 minutes unless configured).
DEFAULT_ARGS = {"owner": "loopml", "retries": 1}
MINUTES = dt.timedelta(minutes=1)
HOURS = dt.timedelta(hours=1)


def loopml_task(
    task_id: str, args: str, timeout: dt.timedelta, doc: str
) -> BashOperator:
    """A task that runs ``loopml <args>``; a non-zero exit fails the task.

    Args:
        task_id: the task's id in the DAG.
        args: the command line after ``loopml`` (Jinja, e.g. ``{{ ds }}``).
        timeout: how long one try may run before Airflow kills it.
        doc: one line on what the task does, shown in the UI.

    Returns:
        The operator, inside the DAG being defined.
    """
    return BashOperator(
        task_id=task_id,
        bash_command=f'"$LOOPML_BIN" {args}',
        env={"LOOPML_BIN": f"{{{{ var.value.get('loopml_bin', {LOOPML_BIN!r}) }}}}"},
        append_env=True,
        cwd=f"{{{{ var.value.get('loopml_project_dir', {PROJECT_DIR!r}) }}}}",
        execution_timeout=timeout,
        doc_md=doc,
    )


DAILY_DOC = """The daily cycle of one workload, for the day `ds` (UTC), once it is over:
ingest (the day's batch) -> validate -> features -> batch (results for the
next day) -> monitor -> retrain (only when the retrain policy triggers);
features, batch and monitor only when the workload declares them.
A failed stage stops the run. See docs/orchestration.md."""
WEEKLY_DOC = """The weekly full retrain of one workload: train -> evaluate -> promote
(the gate decides). See docs/orchestration.md."""


def daily_dag(workload: str, capabilities: tuple[str, ...] = ()) -> DAG:
    """The daily DAG of one workload.

    Args:
        workload: the loopml workload (``--workload``).
        capabilities: what it declares (``loopml workloads --json``); the
            features, batch and monitor tasks need theirs.

    Returns:
        The DAG, registered with Airflow.
    """
    w = f"--workload {workload}"
    with DAG(
        dag_id=f"loopml_daily_{workload}",
        description=f"loopml {workload}: the day's batch through to monitoring",
        doc_md=DAILY_DOC,
        # A run's ds is the day that just ended (Airflow 3's plain "@daily"
        # would make it the day that starts, whose data are not in yet).
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dt.timedelta(hours=6),
        default_args=DEFAULT_ARGS,
        tags=["loopml", workload, "daily"],
    ) as dag:
        tasks = [
            loopml_task(
                "ingest",
                f"ingest {w} --date {{{{ ds }}}}",
                30 * MINUTES,
                "Store the day's batch under `<home>/data/<workload>/batches/`.",
            ),
            loopml_task(
                "validate",
                f"validate {w}",
                30 * MINUTES,
                "The pandera gate; a bad batch is quarantined and the run stops.",
            ),
        ]
        if "feature_views" in capabilities:
            tasks.append(
                loopml_task(
                    "features",
                    f"features {w}",
                    60 * MINUTES,
                    "Publish the validated data to Feast (offline and online).",
                )
            )
        if "batch_scorer" in capabilities:
            tasks.append(
                loopml_task(
                    "batch",
                    f"batch {w} --date {{{{ macros.ds_add(ds, 1) }}}}",
                    60 * MINUTES,
                    "The champion's results for the next day.",
                )
            )
        if "monitor" in capabilities:
            tasks.append(
                loopml_task(
                    "monitor",
                    f"monitor {w} --date {{{{ ds }}}}",
                    30 * MINUTES,
                    "Drift, data quality and model age of the day; alerts.",
                )
            )
        tasks.append(
            loopml_task(
                "retrain",
                f"retrain {w} --date {{{{ ds }}}}",
                180 * MINUTES,
                "Train, evaluate and promote if the retrain policy triggers.",
            )
        )
        chain(*tasks)
    return dag


def weekly_dag(workload: str) -> DAG:
    """The weekly retrain DAG of one workload.

    Args:
        workload: the loopml workload (``--workload``).

    Returns:
        The DAG, registered with Airflow.
    """
    w = f"--workload {workload}"
    with DAG(
        dag_id=f"loopml_weekly_{workload}",
        description=f"loopml {workload}: full retrain, through the promotion gate",
        doc_md=WEEKLY_DOC,
        schedule="0 6 * * 0",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dt.timedelta(hours=12),
        default_args=DEFAULT_ARGS,
        tags=["loopml", workload, "weekly"],
    ) as dag:
        chain(
            loopml_task(
                "train",
                f"train {w}",
                4 * HOURS,
                "Fit on all validated data; register as `challenger`.",
            ),
            loopml_task(
                "evaluate",
                f"evaluate {w}",
                4 * HOURS,
                "Backtest the challenger and the baseline; metrics to MLflow.",
            ),
            loopml_task(
                "promote",
                f"promote {w}",
                1 * HOURS,
                "The gate: `champion` moves only if the challenger earns it.",
            ),
        )
    return dag


for _workload in registered_workloads():
    daily_dag(_workload["name"], tuple(_workload.get("capabilities", ())))
    weekly_dag(_workload["name"])
