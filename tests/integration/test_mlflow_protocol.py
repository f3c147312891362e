"""loopml answers MLflow's scoring protocol as ``mlflow models serve`` does.

The demand champion is registered through the real stages (a copy of the
shared trained home, ``conftest.TrainedHomes``), then served by
``mlflow models serve -m models:/demand@champion`` and by loopml, in the
same test; every payload form, CSV, JSON without a content type, ``/ping``,
``/health`` and ``/version`` get the same status and the same predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from conftest import demand_origin, free_port
from loopml.core.config import Settings, load_settings
from loopml.serving.app import create_app

SERIES = [("S01", "I002"), ("S02", "I003"), ("S01", "I001")]


@pytest.fixture
def mlflow_server(demand_home: Path) -> Iterator[tuple[str, Settings, pd.Timestamp]]:
    """The demand champion served by ``mlflow models serve``: URL, settings, origin."""
    settings = load_settings("default")
    origin = demand_origin(settings)
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    log_path = demand_home / "mlflow-serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            str(mlflow),
            "models",
            "serve",
            "-m",
            "models:/demand@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env={
            **_environ(),
            "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_REGISTRY_URI": settings.tracking_uri,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield url, settings, origin
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _environ() -> dict[str, str]:
    """This environment, with the venv's scripts (uvicorn) first on the PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _payloads(origin: pd.Timestamp) -> dict[str, tuple[bytes, dict[str, str]]]:
    days = [str((origin + pd.Timedelta(days=h)).date()) for h in (1, 3, 7)]
    records = [
        # Every column of the model's signature: mlflow models serve needs all.
        {"store_id": s, "item_id": i, "date": d, "price": 2.5, "promo": p, "holiday": 0}
        for (s, i), d, p in zip(SERIES, days, (0, 1, 0), strict=True)
    ]
    columns = list(records[0])
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in records]}
    as_json = {"content-type": "application/json"}
    csv = pd.DataFrame(records).to_csv(index=False).encode()
    bodies = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs (columns)": {"inputs": {c: [r[c] for r in records] for c in columns}},
        "inputs (records)": {"inputs": records},
    }
    payloads = {k: (json.dumps(v).encode(), as_json) for k, v in bodies.items()}
    payloads["text/csv"] = (csv, {"content-type": "text/csv"})
    return payloads


@pytest.mark.slow
def test_answers_equal_mlflow_models_serve(
    mlflow_server: tuple[str, Settings, pd.Timestamp],
) -> None:
    url, settings, origin = mlflow_server
    with TestClient(create_app(settings, workloads=["demand"])) as loopml:
        for path in ("/ping", "/health"):
            assert loopml.get(path).status_code == httpx.get(url + path).status_code
        mlflow_version = httpx.get(f"{url}/version").text
        assert loopml.get("/version").json()["mlflow"] == mlflow_version

        answers = {}
        for label, (body, headers) in _payloads(origin).items():
            theirs = httpx.post(f"{url}/invocations", content=body, headers=headers)
            ours = loopml.post("/invocations", content=body, headers=headers)
            assert theirs.status_code == 200, (label, theirs.text[:500])
            assert ours.status_code == 200, (label, ours.text[:500])
            expected = [p["forecast"] for p in theirs.json()["predictions"]]
            got = [p["forecast"] for p in ours.json()["predictions"]]
            assert got == pytest.approx(expected, rel=1e-9), label
            answers[label] = got
        assert len(answers) == 6 and len(got) == len(SERIES)

        # JSON without a content type: loopml reads it as JSON (mlflow models
        # serve 3.17 answers a 500 there: it splits a missing header).
        body, _ = _payloads(origin)["dataframe_split"]
        bare = loopml.post("/invocations", content=body)
        assert "content-type" not in bare.request.headers
        assert bare.status_code == 200
        assert [p["forecast"] for p in bare.json()["predictions"]] == got
        # A type neither serves is a 415 on both.
        xml = {"content-type": "application/xml"}
        assert (
            httpx.post(f"{url}/invocations", content=b"<a/>", headers=xml).status_code
            == 415
        )
        assert (
            loopml.post("/invocations", content=b"<a/>", headers=xml).status_code == 415
        )
