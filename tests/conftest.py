"""Shared fixtures: a temp loopml home and tiny settings for fast loops."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

if TYPE_CHECKING:
    from loopml.core.config import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

# Tiny but realistic: 2 stores x 4 items x 400 days, a 14-day horizon.
TINY_ENV = {
    "LOOPML_WORKLOADS__DEMAND__N_STORES": "2",
    "LOOPML_WORKLOADS__DEMAND__N_ITEMS": "4",
    "LOOPML_WORKLOADS__DEMAND__N_DAYS": "400",
    "LOOPML_WORKLOADS__DEMAND__HORIZON": "14",
    "LOOPML_WORKLOADS__DEMAND__N_FOLDS": "2",
    "LOOPML_WORKLOADS__DEMAND__FOLD_STEP": "14",
    "LOOPML_WORKLOADS__DEMAND__MODEL__N_ESTIMATORS": "60",
    # recsys: 150 employees x 40 courses x 120 days, a small ranker.
    "LOOPML_WORKLOADS__RECSYS__N_USERS": "150",
    "LOOPML_WORKLOADS__RECSYS__N_ITEMS": "40",
    "LOOPML_WORKLOADS__RECSYS__N_DAYS": "120",
    "LOOPML_WORKLOADS__RECSYS__ALS_ITERATIONS": "8",
    "LOOPML_WORKLOADS__RECSYS__RANKER_N_ESTIMATORS": "40",
    # The monitor stage has its own tests; tiny loops skip it (Evidently import).
    "LOOPML_MONITOR__IN_RUN": "false",
    # So has tuning (Ray start-up); tests/integration/test_tune.py runs it in a loop.
    "LOOPML_TUNE__IN_RUN": "false",
}


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Slowest test files first, so that no worker starts a long file last.

    ``make test`` distributes whole files (``--dist loadfile``) in collection
    order (``--no-loadscope-reorder``); ``tests/durations.json`` holds each
    file's measured seconds (``python tests/durations.py JUNIT_XML``
    refreshes it). Files not in it count as short.
    """
    try:
        seconds = json.loads((REPO / "tests" / "durations.json").read_text("utf-8"))
    except (OSError, ValueError):
        return
    rank = {Path(REPO, name): float(value) for name, value in seconds.items()}
    items.sort(key=lambda item: -rank.get(Path(item.path), 0.0))


@pytest.fixture()
def tiny_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point LOOPML_HOME at a temp folder and shrink the workloads."""
    yield set_tiny_env(monkeypatch, tmp_path / "home")


def set_tiny_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Set the tiny environment with ``home`` as LOOPML_HOME (module fixtures)."""
    monkeypatch.setenv("LOOPML_HOME", str(home))
    monkeypatch.setenv("LOOPML_PROFILE", "default")
    monkeypatch.setenv("LOOPML_CONFIG_DIR", str(REPO / "configs"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    return home


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for running the ``loopml`` CLI in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.pop("VIRTUAL_ENV", None)
    env.update(TINY_ENV)
    env.update(
        {
            "LOOPML_HOME": str(home),
            "LOOPML_CONFIG_DIR": str(REPO / "configs"),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    env.update(extra)
    return env


def free_port() -> int:
    """An ephemeral TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    """Wait until ``url/readyz`` answers 200, failing early if ``proc`` exits."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        time.sleep(0.3)
    raise AssertionError(f"{url} did not become ready in {seconds:.0f} s")


def postgres_unreachable() -> str | None:
    """Why the local PostgreSQL (database ``test``) can't be used, or None."""
    try:
        import psycopg2

        psycopg2.connect(
            host="127.0.0.1",
            port=5432,
            user="postgres",
            dbname="test",
            connect_timeout=3,
        ).close()
    except Exception as error:  # noqa: BLE001 - any failure means "skip"
        return f"PostgreSQL at 127.0.0.1:5432/test is unreachable: {error}"
    return None


def demand_champion(settings: Settings) -> pd.Timestamp:
    """Run ingest .. promote for demand in this process: version 1 is champion.

    Returns:
        The forecast origin: the last validated day.
    """
    from loopml.core.runtime import configure_environment
    from loopml.stages.runner import run_stage

    configure_environment(settings.home)
    for stage in ("ingest", "validate", "features", "train", "evaluate", "promote"):
        run_stage(stage, settings, "demand")
    validated = settings.data_dir("demand") / "validated.parquet"
    return pd.Timestamp(pd.read_parquet(validated, columns=["date"])["date"].max())


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def offline(request: pytest.FixtureRequest) -> str:
    """The offline store a Feast test runs against: Feast's parquet ``file``
    store (default profile) and its PostgreSQL store (production profile),
    skipped with the reason when the local PostgreSQL is unreachable."""
    kind = str(request.param)
    if kind == "postgres" and (reason := postgres_unreachable()):
        pytest.skip(reason)
    return kind
