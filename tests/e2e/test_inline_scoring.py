"""Requests answered from memory are scored on the event loop, the rest in a thread.

Both ways give the same answer; what waits (an online-store read, a batch
file not read yet) never runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loopml.core.config import load_settings
from loopml.monitoring.inference_log import read_log
from loopml.serving.app import create_app
from loopml.serving.fastlane import PredictFastLane
from loopml.serving.scoring import Service
from loopml.workloads.demand.online import OnlineFeatures


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a worker thread has no running loop
        return False
    return True


@pytest.fixture()
def where(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    """(workload, scored on the event loop) of every request logged."""
    seen: list[tuple[str, bool]] = []
    log = Service.log

    def spy(self: Service, workload: str, *args: Any, **kwargs: Any) -> None:
        seen.append((workload, _on_loop()))
        log(self, workload, *args, **kwargs)

    monkeypatch.setattr(Service, "log", spy)
    yield seen


def _rows(home: Path) -> list[dict[str, str]]:
    origin = pd.read_parquet(home / "data" / "demand" / "validated.parquet")[
        "date"
    ].max()
    day = f"{origin + pd.Timedelta(days=1):%Y-%m-%d}"
    return [
        {"store_id": "S01", "item_id": "I001", "date": day},
        {"store_id": "S02", "item_id": "I002", "date": day},
    ]


def test_demand_cache_hits_score_on_the_loop_and_misses_in_a_thread(
    demand_home: Path,
    where: list[tuple[str, bool]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOOPML_SERVING__ONLINE_CACHE_SECONDS", "600")
    reads: list[int] = []
    state_rows = OnlineFeatures.state_rows

    def counted(self: OnlineFeatures, keys: list[tuple[str, str]]) -> Any:
        reads.append(len(keys))
        return state_rows(self, keys)

    monkeypatch.setattr(OnlineFeatures, "state_rows", counted)
    lane: list[bool] = []
    answer = PredictFastLane._answer

    def spied(
        self: PredictFastLane, found: Any, body: bytes, later: list[Any]
    ) -> bytes | None:
        got = answer(self, found, body, later)
        lane.append(got is not None)
        return got

    monkeypatch.setattr(PredictFastLane, "_answer", spied)
    rows = _rows(demand_home)
    settings = load_settings()
    logged_before = _online_rows_logged(settings.home)
    with TestClient(create_app(settings)) as client:
        first = client.post("/v1/demand/predict", json={"rows": rows})
        second = client.post("/v1/demand/predict", json={"rows": rows})
        third = client.post("/v1/demand/predict", json={"rows": rows[:1]})
        assert first.status_code == second.status_code == third.status_code == 200
        # The lane counts and logs its rows after the answer is sent.
        scored = 2 * len(rows) + 1
        counted = f'loopml_prediction_value_count{{workload="demand"}} {scored:.1f}'
        assert counted in client.get("/metrics").text
        assert reads == [2]  # the first request read both series, once
        # A miss waits on the store: a worker thread. Hits: the event loop,
        # answered by the fast lane below FastAPI's routing.
        assert where == [("demand", False), ("demand", True), ("demand", True)]
        assert lane == [False, True, True]
        assert first.content == second.content  # the same bytes either way
        assert first.headers == second.headers
        counted_as = 'route="/v1/demand/predict",status="200"} 3.0'
        assert counted_as in client.get("/metrics").text
        assert third.json()["predictions"] == first.json()["predictions"][:1]
        assert {p["features"] for p in first.json()["predictions"]} == {"online"}
        # MLflow's protocol scores with the model alone: always in memory.
        where.clear()
        mlflow = client.post("/invocations", json={"dataframe_records": rows})
        assert mlflow.status_code == 200, mlflow.text
        assert where == [("demand", True)]
        forecasts = [p["forecast"] for p in first.json()["predictions"]]
        assert [p["forecast"] for p in mlflow.json()["predictions"]] == forecasts
        # Errors are the same on the loop: a 404 that names the series.
        lane.clear()
        unknown = client.post(
            "/v1/demand/predict", json={"rows": [{**rows[0], "item_id": "I999"}]}
        )
        assert unknown.status_code == 404 and "S01/I999" in unknown.text
        # A body the lane cannot take goes to FastAPI whole: the same 422.
        bad = client.post(
            "/v1/demand/predict", json={"rows": [{**rows[0], "promo": 2}]}
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "rows", 0, "promo"]
        assert lane == [False, False]
    # Every scored row was logged: 3 /v1 requests and 1 MLflow request.
    assert _online_rows_logged(settings.home) - logged_before == scored + len(rows)


def _online_rows_logged(home: Path) -> int:
    logged = read_log(home / "inference", "demand")
    return 0 if logged.empty else int((logged["source"] == "online").sum())


def test_inline_max_rows_zero_always_uses_a_thread_with_the_same_answer(
    demand_home: Path,
    where: list[tuple[str, bool]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = _rows(demand_home)
    monkeypatch.setenv("LOOPML_SERVING__ONLINE_CACHE_SECONDS", "600")
    with TestClient(create_app(load_settings())) as client:
        client.post("/v1/demand/predict", json={"rows": rows})
        inline = client.post("/v1/demand/predict", json={"rows": rows}).json()
    assert where[-1] == ("demand", True)
    where.clear()
    monkeypatch.setenv("LOOPML_SERVING__INLINE_MAX_ROWS", "0")
    with TestClient(create_app(load_settings())) as client:
        for _ in range(2):
            threaded = client.post("/v1/demand/predict", json={"rows": rows}).json()
    assert where == [("demand", False), ("demand", False)]
    assert threaded == inline


def test_recsys_reads_its_batch_in_a_thread_then_answers_on_the_loop(
    recsys_home: Path, where: list[tuple[str, bool]]
) -> None:
    with TestClient(create_app(load_settings())) as client:
        model = client.app.state.store.get("recsys").model  # type: ignore[attr-defined]
        user = model.user_ids()[0]
        route = f"/v1/recsys/users/{user}/recommendations"
        first = client.get(route)
        second = client.get(route)
        live = client.get(route, params={"k": 20})
        assert first.status_code == second.status_code == live.status_code == 200
        assert first.json()["source"] == "batch" and live.json()["source"] == "live"
        assert first.json() == second.json()
        assert where == [("recsys", False), ("recsys", True), ("recsys", True)]
        assert [i["item_id"] for i in live.json()["items"][:10]] == [
            i["item_id"] for i in first.json()["items"]
        ]
