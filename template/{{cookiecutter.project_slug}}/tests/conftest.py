"""Shared test set-up: loopml's settings from this project's configs/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _project_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read configs/ of this project and keep loopml's home in a temp folder.

    Workload settings from the environment (``LOOPML_WORKLOADS__*``, say a
    size for ``make run``) are dropped: the tests choose their own sizes.
    """
    for name in [n for n in os.environ if n.startswith("LOOPML_WORKLOADS__")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOOPML_CONFIG_DIR", str(ROOT / "configs"))
    monkeypatch.setenv("LOOPML_PROFILE", "default")
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
