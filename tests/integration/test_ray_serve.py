"""``loopml serve --ray``: the same app, as a Ray Serve deployment, answers.

A local Ray (files under the home) runs two replicas behind Ray Serve's
proxy; the forecasts equal the ones the in-process app gives, and Ctrl-C
stops Serve and Ray, even when the process started with SIGINT ignored.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import conftest
from loopml.core.config import load_settings
from loopml.serving.app import create_app


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_on_ray_answers_like_uvicorn(demand_home: Path) -> None:
    settings = load_settings("default")
    origin = conftest.demand_origin(settings)  # demand version 1 is champion
    body = {
        "rows": [
            {
                "store_id": "S01",
                "item_id": "I001",
                "date": f"{origin + pd.Timedelta(days=1):%Y-%m-%d}",
            },
            {
                "store_id": "S02",
                "item_id": "I002",
                "date": f"{origin + pd.Timedelta(days=3):%Y-%m-%d}",
                "promo": 1,
            },
        ]
    }
    with TestClient(create_app(settings)) as local:
        expected = local.post("/v1/demand/predict", json=body).json()

    port = conftest.free_port()
    command = [sys.executable, "-m", "loopml.cli", "serve", "--ray"]
    command += ["--replicas", "2", "--host", "127.0.0.1", "--port", str(port)]
    # Started with SIGINT ignored, as the shell starts a script's background
    # job (`loopml serve --ray &`) and everything under it: Python then
    # never raised KeyboardInterrupt, and serve --ray ran until killed (the
    # "hang on Ctrl-C" of every CI run started that way).
    proc = subprocess.Popen(
        ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh", *command],
        env=conftest.subprocess_env(demand_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            conftest.wait_ready(url, proc, seconds=420)
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.communicate()[1].decode()[-3000:]) from None
        answers = [
            httpx.post(f"{url}/v1/demand/predict", json=body, timeout=90)
            for _ in range(6)
        ]
        assert {a.status_code for a in answers} == {200}
        assert all(a.json() == expected for a in answers)
        assert httpx.get(f"{url}/version", timeout=10).json()["models"] == {
            "demand": "1"
        }
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(
                f"serve --ray did not stop on Ctrl-C:\n{err.decode()[-3000:]}"
            ) from None
    assert proc.returncode in (0, 1, -signal.SIGINT), err.decode()[-3000:]
    assert "stopping Ray Serve (SIGINT)" in err.decode()
