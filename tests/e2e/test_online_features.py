"""A new day published to Feast moves the served forecast origin, no retrain."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import conftest
from loopml.core.config import load_settings
from loopml.serving.app import create_app


def _ok(home: Path, *args: str) -> str:
    result = conftest.loopml(home, *args, COLUMNS="2000")
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_next_day_features_serve_without_retraining(demand_home: Path) -> None:
    home = demand_home  # `loopml run -w demand` completed on it
    validated = home / "data" / "demand" / "validated.parquet"
    origin = pd.read_parquet(validated)["date"].max()
    day = origin + pd.Timedelta(days=1)
    # The next day arrives and is published to the feature store; no training.
    _ok(home, "ingest", "--date", f"{day:%Y-%m-%d}")
    _ok(home, "validate")
    out = _ok(home, "features")
    assert f"online up to {day:%Y-%m-%d}" in out

    horizon = int(conftest.TINY_ENV["LOOPML_WORKLOADS__DEMAND__HORIZON"])
    last_date = day + pd.Timedelta(days=horizon)  # beyond the model's own origin
    rows = [
        {"store_id": "S01", "item_id": "I001", "date": f"{last_date:%Y-%m-%d}"},
        {
            "store_id": "S02",
            "item_id": "I004",
            "date": f"{day + pd.Timedelta(days=1):%Y-%m-%d}",
        },
    ]
    with TestClient(create_app(load_settings())) as client:
        assert client.get("/readyz").status_code == 200
        response = client.post("/v1/demand/predict", json={"rows": rows})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["origin"] == f"{origin:%Y-%m-%d}"  # the model's training origin
        for forecast in body["predictions"]:
            assert forecast["features"] == "online"
            assert forecast["origin"] == f"{day:%Y-%m-%d}"
        assert [f["horizon"] for f in body["predictions"]] == [horizon, 1]
        # The model alone (MLflow protocol) only knows its own origin.
        legacy = client.post("/invocations", json={"dataframe_records": rows[:1]})
        assert legacy.status_code == 422
        assert legacy.json()["detail"][0]["loc"] == [
            "body",
            "dataframe_records",
            0,
            "date",
        ]


def test_service_falls_back_to_model_state_without_a_store(demand_home: Path) -> None:
    home = demand_home  # `loopml run -w demand` completed on it
    # Lose the feature store: the service must still forecast, from the state
    # bundled with the model, and /readyz must say the store is missing.
    import shutil

    shutil.rmtree(home / "feature_store")
    origin = pd.read_parquet(home / "data" / "demand" / "validated.parquet")[
        "date"
    ].max()
    row = {
        "store_id": "S01",
        "item_id": "I001",
        "date": f"{origin + pd.Timedelta(days=3):%Y-%m-%d}",
    }
    with TestClient(create_app(load_settings())) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "online feature store" in ready.json()["detail"]
        response = client.post("/v1/demand/predict", json={"rows": [row]})
        assert response.status_code == 200, response.text
        forecast = response.json()["predictions"][0]
        assert forecast["features"] == "model"
        assert forecast["sales_today"] is None
