"""Small generated worlds shared by the model tests (built once per session).

Demand: 3 stores x 6 items x 400 days, 14-day horizon. Recsys: 300 employees,
60 courses, 180 days, the last 28 days held out. Both generators are seeded,
so every number the tests compare is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from loopml.workloads.demand import data as demand_data
from loopml.workloads.demand.features import KEYS, build_training_examples
from loopml.workloads.recsys.data import RecsysData, generate
from loopml.workloads.recsys.evaluate import time_split

HORIZON = 14


@pytest.fixture(scope="session")
def demand_raw() -> pd.DataFrame:
    return demand_data.generate(n_stores=3, n_items=6, n_days=400, seed=7)


@pytest.fixture(scope="session")
def demand_examples(demand_raw: pd.DataFrame) -> pd.DataFrame:
    return build_training_examples(demand_raw, horizon=HORIZON)


@pytest.fixture(scope="session")
def demand_requests(demand_raw: pd.DataFrame) -> pd.DataFrame:
    """Every series x every horizon after the last day, at its last price."""
    origin = pd.Timestamp(demand_raw["date"].max())
    last = demand_raw.sort_values("date").groupby(KEYS).tail(1)[[*KEYS, "price"]]
    frames = [
        last.assign(date=origin + pd.Timedelta(days=h), promo=0, holiday=0)
        for h in range(1, HORIZON + 1)
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def recsys_data() -> RecsysData:
    return generate(n_users=300, n_items=60, n_days=180, seed=1)


@pytest.fixture(scope="session")
def recsys_split(recsys_data: RecsysData) -> tuple[RecsysData, pd.DataFrame]:
    train, test = time_split(recsys_data.interactions, test_days=28)
    return recsys_data.with_interactions(train), test


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway SQLite tracking store and experiment (restored afterwards)."""
    folder = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "model-tests", artifact_location=(folder / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)
    yield folder
    mlflow.set_tracking_uri(previous)
