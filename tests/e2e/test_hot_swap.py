"""Hot reload under load: a promotion and a rollback with 0 failed requests."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest

import conftest

LOOPML = [sys.executable, "-m", "loopml.cli"]
POLL = "0.5"
PAUSE = 0.02


TREES = "LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS"


def _ok(home: Path, *args: str, **env: str) -> str:
    result = conftest.loopml(home, *args, COLUMNS="2000", **env)
    assert result.returncode == 0, f"loopml {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


class Client(threading.Thread):
    """Sends a forecast every PAUSE seconds; counts answers by status and version.

    Paced, not back to back: a reload must not fail a request whatever the
    rate, and a flat-out client would take a core from the other tests.
    """

    def __init__(self, url: str, body: dict[str, object]) -> None:
        super().__init__(daemon=True)
        self.url, self.body = url, body
        self.stop = threading.Event()
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self.last_version = ""

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(
                        f"{self.url}/v1/demand/predict", json=self.body
                    )
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text}")
                    continue
                self.last_version = response.json()["model_version"]
                self.versions[self.last_version] += 1
                self.stop.wait(PAUSE)

    def wait_for(self, version: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while self.last_version != version and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.last_version == version, f"still serving {self.last_version}"


@pytest.mark.slow
def test_promotion_and_rollback_swap_without_failed_requests(demand_home: Path) -> None:
    home = demand_home
    # v1: a deliberately small model (20 trees, conftest.TRAINED); v2: the
    # normal one, which beats it.
    assert conftest.TRAINED["demand"] == {TREES: "20"}
    port = conftest.free_port()
    server = subprocess.Popen(
        [*LOOPML, "serve", "--port", str(port)],
        env=conftest.subprocess_env(home, LOOPML_SERVING__POLL_SECONDS=POLL),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        conftest.wait_ready(url, server)
        origin = pd.read_parquet(home / "data" / "demand" / "validated.parquet")[
            "date"
        ].max()
        body = {
            "rows": [
                {
                    "store_id": "S01",
                    "item_id": "I001",
                    "date": f"{origin + pd.Timedelta(days=2):%Y-%m-%d}",
                }
            ]
        }
        client = Client(url, body)
        client.start()
        client.wait_for("1")

        # This test is about the swap, not the gate's guards: relax them.
        _ok(home, "run", "-w", "demand", LOOPML_GATE__GUARD_TOLERANCE="1")
        assert "promote" in _ok(home, "history", "-w", "demand")
        client.wait_for("2")

        _ok(home, "rollback", "-w", "demand", "--reason", "e2e test")
        client.wait_for("1")

        # A worse model (a single tree) is refused; the service stays on v1.
        _ok(home, "run", "-w", "demand", **{TREES: "1"})
        time.sleep(float(POLL) * 4)
        assert client.last_version == "1"
        client.stop.set()
        client.join(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert client.failures == []
    assert client.versions["1"] > 0 and client.versions["2"] > 0
    history = _ok(home, "history", "-w", "demand")
    assert "rollback" in history and "e2e test" in history
    refused = history.strip().splitlines()[-1]  # piped: one line per decision
    assert "reject" in refused and "wape" in refused, history
    assert client.versions["3"] == 0
    # Nothing left to roll back to: a clear error, the champion unchanged.
    failed = conftest.loopml(home, "rollback", "-w", "demand", COLUMNS="2000")
    assert failed.returncode == 1
    assert "nothing to roll back to" in failed.stderr
