"""loopml's Airflow DAGs (dags/) import cleanly and run the daily cycle.

Airflow runs from its own venv (``make airflow-setup``: .venv-airflow, from
requirements-airflow.lock) on a throw-away SQLite metadata database; its tasks
call the loopml CLI of this venv on a tiny home. ``airflow dags test`` runs a
whole DAG run in one process, no scheduler or workers needed. The weekly
DAG is only checked for shape here: its tasks are the train, evaluate and
promote commands every loop test runs, and a second DAG run would double
this file's time.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

import conftest

REPO = conftest.REPO
AIRFLOW = REPO / ".venv-airflow" / "bin" / "airflow"
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"
LOOPML = Path(sys.executable).with_name("loopml")
DAILY_TASKS = ["ingest", "validate", "features", "batch", "monitor", "retrain"]
WEEKLY_TASKS = ["train", "evaluate", "promote"]
#: The tiny demand world's days run from 2024-01-01 to 2025-02-03 (400 days).
NEXT_DAY = "2025-02-04"

# Run in .venv-airflow: every DAG of dags/ with its schedule and tasks, as JSON.
DESCRIBE_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({
    "errors": {path: str(error) for path, error in bag.import_errors.items()},
    "dags": {
        dag.dag_id: {
            "timetable": type(dag.timetable).__name__,
            "schedule": dag.timetable.expression,
            "catchup": dag.catchup,
            "tasks": {
                task.task_id: {
                    "retries": task.retries,
                    "timeout": task.execution_timeout.total_seconds(),
                    "upstream": sorted(task.upstream_task_ids),
                    "command": task.bash_command,
                }
                for task in dag.tasks
            },
        }
        for dag in bag.dags.values()
    },
}))
"""


def _index_unreachable() -> str | None:
    """Why the package index uv installs from can't be reached, or None."""
    url = (
        os.environ.get("UV_DEFAULT_INDEX")
        or os.environ.get("UV_INDEX_URL")
        or os.environ.get("PIP_INDEX_URL")
        or "https://pypi.org/simple"
    )
    parsed = urlparse(url)
    host = parsed.hostname or "pypi.org"
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as error:
        return f"the package index {host}:{port} is unreachable: {error}"
    return None


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.venv-airflow installed and a migrated SQLite metadata database."""
    setup = subprocess.run(
        ["make", "airflow-setup"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if setup.returncode != 0:
        if reason := _index_unreachable():
            pytest.skip(f"cannot install Airflow: {reason}")
        raise AssertionError(f"make airflow-setup:\n{setup.stdout}\n{setup.stderr}")
    home = tmp_path_factory.mktemp("airflow")
    _airflow(home, home / "unused", "db", "migrate")
    return home


def _env(airflow_home: Path, loopml_home: Path) -> dict[str, str]:
    return conftest.subprocess_env(
        loopml_home,
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home}/airflow.db",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # A failed task is retried once (the DAGs' retries=1): at once, here.
        AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY="1",
        LOOPML_BIN=str(LOOPML),
        COLUMNS="2000",
    )


def _airflow(airflow_home: Path, loopml_home: Path, *args: str) -> str:
    result = subprocess.run(
        [str(AIRFLOW), *args],
        env=_env(airflow_home, loopml_home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"airflow {' '.join(args)}:\n{result.stdout[-8000:]}\n{result.stderr[-8000:]}"
    )
    return result.stdout


def _task_states(airflow_home: Path, dag_id: str) -> dict[str, str]:
    with sqlite3.connect(airflow_home / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ?", (dag_id,)
        ).fetchall()
    return dict(rows)


def test_dags_import_cleanly_with_their_schedules(airflow_home: Path) -> None:
    described = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", DESCRIBE_DAGS, str(REPO / "dags")],
        env=_env(airflow_home, airflow_home / "unused"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert described.returncode == 0, described.stderr
    found = json.loads(described.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    dags = found["dags"]
    assert sorted(dags) == [
        f"loopml_{kind}_{workload}"
        for kind in ("daily", "weekly")
        for workload in ("demand", "recsys")
    ]
    daily, weekly = dags["loopml_daily_recsys"], dags["loopml_weekly_recsys"]
    # ds is the day that ended: the run's data interval, not its trigger time.
    assert daily["timetable"] == "CronDataIntervalTimetable"
    assert daily["schedule"] == "0 0 * * *" and not daily["catchup"]  # @daily
    assert weekly["schedule"] == "0 6 * * 0" and not weekly["catchup"]
    for dag, order in ((daily, DAILY_TASKS), (weekly, WEEKLY_TASKS)):
        tasks = dag["tasks"]
        assert sorted(tasks) == sorted(order)
        # A chain, in this order: each task waits for the one before.
        for before, task in zip([None, *order], order, strict=False):
            assert tasks[task]["upstream"] == ([before] if before else [])
        for task in tasks.values():
            assert task["retries"] == 1 and 0 < task["timeout"] <= 4 * 3600
            assert task["command"].startswith('"$LOOPML_BIN" ')
            assert "--workload recsys" in task["command"]
    assert "--date {{ ds }}" in daily["tasks"]["ingest"]["command"]
    assert "--date {{ ds }}" in daily["tasks"]["retrain"]["command"]


@pytest.mark.slow
def test_daily_dag_runs_the_next_day_through_every_stage(
    airflow_home: Path, tmp_path: Path, trained_homes: conftest.TrainedHomes
) -> None:
    # A champion to monitor: the session's trained demand home, copied.
    home = trained_homes.copy("demand", tmp_path / "home")
    assert not (home / "data" / "demand" / "batches").exists()

    _airflow(airflow_home, home, "dags", "test", "loopml_daily_demand", NEXT_DAY)

    assert _task_states(airflow_home, "loopml_daily_demand") == dict.fromkeys(
        DAILY_TASKS, "success"
    )
    data = home / "data" / "demand"
    batch = pd.read_parquet(data / "batches" / f"date={NEXT_DAY}.parquet")
    assert len(batch) == 2 * 4  # TINY_ENV: one row per store and item
    validated = pd.read_parquet(data / "validated.parquet")
    assert validated["date"].max() == pd.Timestamp(NEXT_DAY)
    report = json.loads(
        (home / "reports" / "demand" / f"monitor-{NEXT_DAY}.json").read_text("utf-8")
    )
    assert report["date"] == NEXT_DAY and report["current"]["end"] == NEXT_DAY
    assert report["model_version"] == "1"
