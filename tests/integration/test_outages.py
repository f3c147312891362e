"""The online feature store goes away under the production settings.

A private ``redis-server`` (its own port and folder, so the shared Redis
and parallel tests are untouched) is the online store. With
``serving.require_online_features`` (the production profile's setting),
stopping it makes ``/readyz`` a 503 and demand requests a 503 that says
why; once it is back, the service recovers by itself, without a restart,
and forecasts from the online store again.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import conftest
from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.serving.app import create_app
from loopml.stages.runner import run_stage

SERVER = shutil.which("redis-server")


def _start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """A redis-server on ``port`` persisting to ``folder`` (AOF, every write)."""
    assert SERVER is not None
    proc = subprocess.Popen(
        [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis(port=port, socket_timeout=1).ping()
            return proc
        except redis.ConnectionError:
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Its processes (the running one last); all stopped at the end."""
    if SERVER is None:
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    procs = [_start_redis(conftest.free_port(), folder)]
    yield procs
    for proc in procs:
        if proc.poll() is None:
            _stop(proc)


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_redis_outage_is_a_clear_503_and_the_service_recovers(
    demand_home: Path,
    private_redis: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = private_redis[0]
    port = int(server.args[2])  # type: ignore[index]
    folder = Path(server.args[-1])  # type: ignore[index]
    monkeypatch.setenv("LOOPML_FEATURE_STORE__ONLINE", "redis")
    monkeypatch.setenv(
        "LOOPML_FEATURE_STORE__REDIS_CONNECTION_STRING", f"127.0.0.1:{port}"
    )
    monkeypatch.setenv("LOOPML_SERVING__REQUIRE_ONLINE_FEATURES", "true")
    monkeypatch.setenv("LOOPML_SERVING__ONLINE_RETRY_SECONDS", "0.5")
    settings = load_settings("default")
    assert settings.feature_store is not None
    assert settings.feature_store.online == "redis"
    configure_environment(settings.home)
    # The trained home (version 1 champion) published its features to its
    # SQLite online store; published afresh, they go to this Redis.
    (settings.home / "feature_store" / "registry.db").unlink()
    (settings.state_dir("demand") / "features.json").unlink()
    run_stage("features", settings, "demand")
    origin = conftest.demand_origin(settings)
    rows = [
        {
            "store_id": "S01",
            "item_id": "I001",
            "date": f"{origin + pd.Timedelta(days=1):%Y-%m-%d}",
        }
    ]

    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        before = client.post("/v1/demand/predict", json={"rows": rows})
        assert before.status_code == 200, before.text
        assert before.json()["predictions"][0]["features"] == "online"

        server.kill()  # the outage: kill -9, no goodbye to the clients
        server.wait(timeout=20)
        assert _until(lambda: client.get("/readyz").status_code == 503, 20)
        ready = client.get("/readyz").json()
        assert "online feature store unreachable" in ready["detail"]
        during = client.post("/v1/demand/predict", json={"rows": rows})
        assert during.status_code == 503
        assert "online feature store unreachable" in during.json()["detail"]
        assert int(during.headers["retry-after"]) >= 1
        assert client.get("/healthz").status_code == 200  # alive, not ready

        private_redis.append(_start_redis(port, folder))  # back, with its data
        assert _until(lambda: client.get("/readyz").status_code == 200, 30)
        after = client.post("/v1/demand/predict", json={"rows": rows})
        assert after.status_code == 200, after.text
        assert after.json()["predictions"] == before.json()["predictions"]
