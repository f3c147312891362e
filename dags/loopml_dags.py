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
import os
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, chain

#: The workloads scheduled; each gets its own daily and weekly DAG.
WORKLOADS = ("demand", "recsys")
#: The first day a schedule may cover (catchup is off: only the latest runs).
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

PROJECT_DIR = os.environ.get(
    "LOOPML_PROJECT_DIR", str(Path(__file__).resolve().parents[1])
)
LOOPML_BIN = os.environ.get("LOOPML_BIN", str(Path(PROJECT_DIR) / ".venv/bin/loopml"))

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
next day) -> monitor -> retrain (only when the retrain policy triggers).
A failed stage stops the run. See docs/orchestration.md."""
WEEKLY_DOC = """The weekly full retrain of one workload: train -> evaluate -> promote
(the gate decides). See docs/orchestration.md."""


def daily_dag(workload: str) -> DAG:
    """The daily DAG of one workload.

    Args:
        workload: the loopml workload (``--workload``).

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
        chain(
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
            loopml_task(
                "features",
                f"features {w}",
                60 * MINUTES,
                "Publish the validated data to Feast (offline and online store).",
            ),
            loopml_task(
                "batch",
                f"batch {w} --date {{{{ macros.ds_add(ds, 1) }}}}",
                60 * MINUTES,
                "The champion's results for the next day (recsys top-k).",
            ),
            loopml_task(
                "monitor",
                f"monitor {w} --date {{{{ ds }}}}",
                30 * MINUTES,
                "Drift, data quality and model age for the day; alerts on drift.",
            ),
            loopml_task(
                "retrain",
                f"retrain {w} --date {{{{ ds }}}}",
                180 * MINUTES,
                "Train, evaluate and promote if the retrain policy triggers.",
            ),
        )
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


for _workload in WORKLOADS:
    daily_dag(_workload)
    weekly_dag(_workload)
