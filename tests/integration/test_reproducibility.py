"""Same data version, config and seed: identical metrics and predictions."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.stages.runner import run_stage
from loopml.workloads.demand.config import DemandSettings


def _requests(validated: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Every series on every day of the horizon, half of them on promotion."""
    origin = validated["date"].max()
    series = validated[["store_id", "item_id"]].drop_duplicates()
    days = pd.DataFrame({"date": origin + pd.to_timedelta(range(1, horizon + 1), "D")})
    grid = series.merge(days, how="cross")
    # Dates as ISO text, as the served model's signature (and clients) have them.
    return grid.assign(
        date=grid["date"].dt.strftime("%Y-%m-%d"),
        price=2.5,
        promo=np.arange(len(grid)) % 2,
        holiday=0,
    ).reset_index(drop=True)


def test_training_twice_gives_identical_results(tiny_env: Path) -> None:
    settings = load_settings("default")
    configure_environment(settings.home)
    state = settings.state_dir("demand")
    for stage in ("ingest", "validate", "features"):
        run_stage(stage, settings, "demand")

    runs = []
    for _ in range(2):
        run_stage("train", settings, "demand")
        run_stage("evaluate", settings, "demand")
        evaluated = json.loads((state / "evaluate.json").read_text(encoding="utf-8"))
        runs.append(evaluated)
    first, second = runs
    assert first["version"] != second["version"]  # two real, separate models
    assert first["metrics"] == second["metrics"]  # exactly, not approximately
    assert 0 < first["metrics"]["wape"] < first["metrics"]["baseline_wape"]

    client = MlflowClient()
    tags = [client.get_run(r["run_id"]).data.tags for r in runs]
    lineage = ("loopml.data_version", "loopml.git_commit", "loopml.lock_hash")
    assert [tags[0][k] for k in lineage] == [tags[1][k] for k in lineage]
    params = [client.get_run(r["run_id"]).data.params for r in runs]
    assert params[0] == params[1]

    validated = pd.read_parquet(settings.data_dir("demand") / "validated.parquet")
    requests = _requests(validated, DemandSettings.of(settings).horizon)
    predictions = [
        mlflow.pyfunc.load_model(f"models:/demand/{r['version']}").predict(requests)
        for r in runs
    ]
    assert (
        len(predictions[0]) == len(requests) == 8 * DemandSettings.of(settings).horizon
    )
    assert predictions[0]["forecast"].nunique() > 1  # a real forecast, not a constant
    pd.testing.assert_frame_equal(predictions[0], predictions[1], check_exact=True)
