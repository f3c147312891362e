"""Shared fixtures: a temp loopml home and tiny settings for fast loops."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

# Tiny but realistic: 2 stores x 4 items x 400 days, a 14-day horizon.
TINY_ENV = {
    "LOOPML_DEMAND__N_STORES": "2",
    "LOOPML_DEMAND__N_ITEMS": "4",
    "LOOPML_DEMAND__N_DAYS": "400",
    "LOOPML_DEMAND__HORIZON": "14",
    "LOOPML_DEMAND__N_FOLDS": "2",
    "LOOPML_DEMAND__FOLD_STEP": "14",
    "LOOPML_DEMAND__MODEL__N_ESTIMATORS": "60",
}


@pytest.fixture()
def tiny_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point LOOPML_HOME at a temp folder and shrink the demand workload."""
    home = tmp_path / "home"
    monkeypatch.setenv("LOOPML_HOME", str(home))
    monkeypatch.setenv("LOOPML_PROFILE", "default")
    monkeypatch.setenv("LOOPML_CONFIG_DIR", str(REPO / "configs"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    yield home


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
