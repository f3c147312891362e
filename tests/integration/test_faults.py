"""Fault injection: ``kill -9`` in the middle of train and of promote.

Whenever the process dies, the ``champion`` alias must be either unchanged
or fully moved, always on a complete, loadable version; the registry and the
feature store must still open; and the next run must simply work. The kills
land at several moments of each command (no hook in the code: real timing),
so a crash before, during and after the registry writes is covered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

import conftest
from loopml.core.config import load_settings
from loopml.models.registry import CHAMPION, get_alias
from loopml.models.tracking import setup_mlflow
from loopml.sdk.feast import open_store

LOOPML = [sys.executable, "-m", "loopml.cli"]
#: Seconds after start at which each attempt is killed.
DELAYS = (3.0, 8.0)


def _kill_after(home: Path, delay: float, *args: str, **env: str) -> int | None:
    """Start ``loopml ARGS``, SIGKILL it after ``delay`` s; its exit status."""
    proc = subprocess.Popen(
        [*LOOPML, *args],
        env=conftest.subprocess_env(home, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return proc.returncode


def _ok(home: Path, *args: str, **env: str) -> None:
    result = conftest.loopml(home, *args, **env)
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"


def _champion_is_whole(rows: pd.DataFrame) -> str:
    """The champion's version: READY in the registry, loads and predicts."""
    champion = get_alias("demand", CHAMPION)
    assert champion is not None
    version = MlflowClient().get_model_version("demand", champion.version)
    assert version.status == "READY"
    model = mlflow.pyfunc.load_model(f"models:/demand/{champion.version}")
    forecasts = model.predict(rows)
    assert len(forecasts) == len(rows) and forecasts["forecast"].notna().all()
    return str(champion.version)


@pytest.mark.slow
def test_kill_9_during_train_and_promote_keeps_a_whole_champion(
    demand_home: Path,
) -> None:
    home = demand_home
    # v1: a deliberately small model (20 trees, conftest.TRAINED), so that a
    # normal one beats it.
    assert conftest.TRAINED["demand"] == {
        "LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS": "20"
    }
    settings = load_settings("default")
    validated = settings.data_dir("demand") / "validated.parquet"
    origin = pd.read_parquet(validated, columns=["date"])["date"].max()
    setup_mlflow(settings)
    rows = pd.DataFrame(
        {
            "store_id": ["S01", "S02"],
            "item_id": ["I001", "I002"],
            "date": [f"{origin + pd.Timedelta(days=1):%Y-%m-%d}"] * 2,
            "price": [2.5, 2.5],
            "promo": [0, 1],
            "holiday": [0, 0],
        }
    )
    first = _champion_is_whole(rows)

    # Train killed at several moments: the champion never moves.
    for delay in DELAYS:
        _kill_after(home, delay, "train", "-w", "demand")
        assert _champion_is_whole(rows) == first
    assert open_store(settings).list_feature_views()  # the store still opens

    # A better challenger, evaluated; promote killed at several moments.
    relaxed = {"LOOPML_GATE__GUARD_TOLERANCE": "1"}
    _ok(home, "train", "-w", "demand", **relaxed)
    _ok(home, "evaluate", "-w", "demand", **relaxed)
    candidate = get_alias("demand", "challenger")
    assert candidate is not None and str(candidate.version) != first
    seen = set()
    for delay in DELAYS:
        _kill_after(home, delay, "promote", "-w", "demand", **relaxed)
        seen.add(_champion_is_whole(rows))
    assert seen <= {first, str(candidate.version)}  # old or new, nothing else
    # Whatever was cut short, a complete promote leaves the challenger champion.
    _ok(home, "promote", "-w", "demand", **relaxed)
    assert _champion_is_whole(rows) == str(candidate.version)
