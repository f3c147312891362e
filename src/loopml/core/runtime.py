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


#: Linux's prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def end_with_parent(parent: int) -> bool:
    """Have Linux send this process SIGTERM when its parent (``parent``) dies.

    For uvicorn's worker processes (``loopml serve --workers N``): its
    supervisor does not stop them when it is killed outright (``kill -9``),
    and they went on holding the port and answering with the champions
    they had. SIGTERM stops a worker the way uvicorn stops gracefully
    (checked by hand with two workers: the 300 requests answered before the
    kill were all in the inference log). Linux sends the signal when the
    thread that started the process ends; uvicorn's supervisor starts and
    restarts its workers from its main thread. Elsewhere than Linux this
    does nothing.

    Args:
        parent: the parent's process id, known from before (a parent that
            died already is not this process's parent any more).

    Returns:
        Whether it was set.
    """
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # it died before we asked: end now
        os.kill(os.getpid(), signal.SIGTERM)
    return True
