"""Canary and shadow traffic: the challenger answers a share, or scores aside.

Version 1 is the champion, version 2 a challenger the gate has not judged.
With ``serving.canary_share = 1`` every demand answer comes from version 2;
with ``serving.shadow`` every answer comes from version 1 while version 2
scores each request after the answer is sent. Both outcomes reach the
inference log with their version and role, for the monitor to compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import conftest
from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.models.registry import CHALLENGER, CHAMPION, get_alias
from loopml.models.tracking import setup_mlflow
from loopml.monitoring.inference_log import read_log
from loopml.serving.app import create_app
from loopml.stages.runner import run_stage

REQUESTS = 5


def _ask(
    monkeypatch: pytest.MonkeyPatch, rows: list[dict[str, str]], **env: str
) -> list[dict[str, Any]]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with TestClient(create_app(load_settings("default"))) as client:
        answers = [
            client.post("/v1/demand/predict", json={"rows": rows})
            for _ in range(REQUESTS)
        ]
    assert {a.status_code for a in answers} == {200}, answers[0].text
    return [a.json() for a in answers]


@pytest.mark.slow
def test_canary_and_shadow_route_and_log_the_challenger(
    demand_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings("default")
    configure_environment(settings.home)
    origin = conftest.demand_origin(settings)  # version 1 is champion (20 trees)
    monkeypatch.setenv("LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS", "25")
    run_stage("train", load_settings("default"), "demand")  # v2, not promoted
    setup_mlflow(settings)
    assert str(get_alias("demand", CHAMPION).version) == "1"  # type: ignore[union-attr]
    assert str(get_alias("demand", CHALLENGER).version) == "2"  # type: ignore[union-attr]
    day = f"{origin + pd.Timedelta(days=2):%Y-%m-%d}"
    rows = [{"store_id": "S01", "item_id": "I001", "date": day}]

    plain = _ask(monkeypatch, rows)
    canary = _ask(monkeypatch, rows, LOOPML_SERVING__CANARY_SHARE="1")
    shadowed = _ask(
        monkeypatch,
        rows,
        LOOPML_SERVING__CANARY_SHARE="0",
        LOOPML_SERVING__SHADOW="true",
    )

    assert {a["model_version"] for a in plain} == {"1"}
    assert {a["model_version"] for a in canary} == {"2"}
    assert {a["model_version"] for a in shadowed} == {"1"}  # the champion answers
    champion_forecast = plain[0]["predictions"][0]["forecast"]
    canary_forecast = canary[0]["predictions"][0]["forecast"]
    assert canary_forecast != champion_forecast  # really the other model
    assert shadowed[0]["predictions"][0]["forecast"] == champion_forecast

    logged = read_log(settings.home / "inference", "demand")
    roles = logged.groupby(["source", "model_version"]).size().to_dict()
    assert roles == {
        ("online", "1"): 2 * REQUESTS,
        ("canary", "2"): REQUESTS,
        ("shadow", "2"): REQUESTS,
    }
    shadow_rows = logged[logged["source"] == "shadow"]
    assert shadow_rows["forecast"].tolist() == [canary_forecast] * REQUESTS
