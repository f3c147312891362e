"""Process environment: keep MLflow, Ray, Feast and matplotlib out of ``$HOME``.

Called once at start-up by the CLI and the service, before the tools are
imported, so that every file they write lands under the loopml home folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def configure_environment(home: Path) -> None:
    """Point the tools' caches and temp folders under ``home``.

    Values already set in the environment are kept, so an operator can still
    choose otherwise.

    Args:
        home: the loopml home folder (created if missing).
    """
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # loopml's own stages report progress; no bar per model download.
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DO_NOT_TRACK": "true",
        "FEAST_USAGE": "False",
        "GIT_PYTHON_REFRESH": "quiet",
        "MPLCONFIGDIR": str(home / "cache" / "matplotlib"),
        "RAY_TMPDIR": str(home / "ray" / "tmp"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "MPLBACKEND": "Agg",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
