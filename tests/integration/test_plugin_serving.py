"""A plug-in workload is served without a line of serving code naming it.

``toy`` (``tests/toy_workload.py``) is registered with ``LOOPML_PLUGINS``; its
champion goes through the real stages and registry. The service then answers its
``/v1/toy/predict``, MLflow ``/v1/toy/invocations`` and Open Inference
Protocol v2 routes: 200 for valid rows, 422 naming the field for bad ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loopml.core.config import Settings, load_settings
from loopml.monitoring.inference_log import read_log
from loopml.serving.app import create_app
from toy_workload import PLUGIN, toy_champion


@pytest.fixture
def toy_settings(tiny_env: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``toy`` registered, trained and champion (version 1)."""
    monkeypatch.setenv("LOOPML_PLUGINS", PLUGIN)
    return toy_champion()


@pytest.mark.slow
def test_a_plugin_gets_every_protocol(toy_settings: Settings) -> None:
    with TestClient(create_app(toy_settings, workloads=["toy"])) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["models"] == {"toy": "1"}

        v1 = client.post("/v1/toy/predict", json={"rows": [{"x": 1.5}, {"x": 21}]})
        assert v1.status_code == 200, v1.text
        assert v1.json() == {
            "model": "toy",
            "model_version": "1",
            "slope": 2.0,
            "predictions": [
                {"y": 3.0, "digits": [0, 3], "tag": None},
                {"y": 42.0, "digits": [4, 2], "tag": None},
            ],
        }
        bad = client.post("/v1/toy/predict", json={"rows": [{"tag": "a"}]})
        assert bad.status_code == 422
        assert [e["loc"] for e in bad.json()["detail"]] == [["body", "rows", 0, "x"]]
        refused = client.post("/v1/toy/predict", json={"rows": [{"x": 1}, {"x": 13}]})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "rows", 1, "x"]

        for path in ("/v1/toy/invocations", "/invocations"):
            mlflow = client.post(path, json={"dataframe_records": [{"x": 1.5}]})
            assert mlflow.status_code == 200, mlflow.text
            assert mlflow.json() == {"predictions": [{"y": 3.0, "digits": [0, 3]}]}
        bad = client.post("/v1/toy/invocations", json={"instances": [{"x": "ten"}]})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "instances", 0, "x"]

        meta = client.get("/v2/models/toy").json()
        assert meta["inputs"] == [
            {"name": "x", "datatype": "FP64", "shape": [-1]},
            {"name": "tag", "datatype": "BYTES", "shape": [-1]},
        ]
        assert meta["outputs"][1] == {
            "name": "digits",
            "datatype": "INT64",
            "shape": [-1, 2],
        }
        assert client.get("/v2/models/toy/ready").json() == {
            "name": "toy",
            "ready": True,
        }
        # OIP clients read readiness from the status code alone.
        assert client.get("/v2/models/nope/ready").status_code == 404
        assert client.get("/v2/health/ready").status_code == 200
        tensor = {"name": "x", "shape": [2], "datatype": "FP64", "data": [1.5, 21]}
        v2 = client.post("/v2/models/toy/infer", json={"inputs": [tensor]})
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"] == [
            {"name": "y", "shape": [2], "datatype": "FP64", "data": [3.0, 42.0]},
            {
                "name": "digits",
                "shape": [2, 2],
                "datatype": "INT64",
                "data": [0, 3, 4, 2],
            },
        ]
        for shape in ([3], [1], [-1], [2, 2]):  # data of 2 values: a 400, not a 200
            wrong = {**tensor, "shape": shape}
            refused = client.post("/v2/models/toy/infer", json={"inputs": [wrong]})
            assert refused.status_code == 400, (shape, refused.text)
            assert "does not hold its 2 value(s)" in refused.json()["detail"]
        nested = {**tensor, "shape": [2, 1], "data": [[1.5], [21]]}
        assert client.post("/v2/models/toy/infer", json={"inputs": [nested]}).json()[
            "outputs"
        ][0]["data"] == [3.0, 42.0]
        tag = {"name": "tag", "shape": [1], "datatype": "BYTES", "data": ["a"]}
        bad = client.post("/v2/models/toy/infer", json={"inputs": [tag]})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "inputs", 0, "x"]

    logged = read_log(toy_settings.home / "inference", "toy")
    assert len(logged) == 2 + 2 + 2 + 2  # /v1, the two MLflow routes, v2 twice
    assert set(logged["source"]) == {"online"}
    assert logged["y"].tolist() == [3.0, 42.0, 3.0, 3.0, 3.0, 42.0, 3.0, 42.0]


def test_before_a_champion_the_v2_ready_routes_say_503(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_PLUGINS", PLUGIN)
    settings = load_settings("default")
    with TestClient(create_app(settings, workloads=["toy"])) as client:
        assert client.get("/v2/models/toy/ready").status_code == 503
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/models/nope/ready").status_code == 404
