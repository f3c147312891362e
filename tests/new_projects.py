"""Helpers of the ``loopml new`` tests (tests/e2e/test_new_project*.py).

Two files, each with its own generated project, so that pytest-xdist runs
them side by side: ``test_new_project.py`` runs the project's ``make test``,
``test_new_project_run.py`` its ``make run``, ``make serve`` and the rest.

A project reuses this environment (``make ... LOOPML_ENV=<this venv>``): its
``.venv`` sees loopml's packages through a ``.pth`` file and only the project
is installed, offline. Its workloads run at a tiny size (their settings
sections, ``LOOPML_WORKLOADS__<NAME>__*``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LOOPML = [sys.executable, "-m", "loopml"]
#: loopml in the generated project's own environment.
PROJECT_LOOPML = [".venv/bin/python", "-m", "loopml"]
#: each kind's tiny size for ``make run`` (LOOPML_WORKLOADS__<NAME>__*).
TINY_SIZES = {
    "regression": {"N_ROWS": "1200", "N_DAYS": "45", "HOLDOUT_DAYS": "10"},
    "classification": {"N_ROWS": "2400", "N_DAYS": "60", "HOLDOUT_DAYS": "14"},
}


def tiny(workload: str, kind: str) -> dict[str, str]:
    """The workload's settings section at a tiny size, as environment variables."""
    size = {**TINY_SIZES[kind], "N_ESTIMATORS": "40"}
    prefix = f"LOOPML_WORKLOADS__{workload.upper()}__"
    return {prefix + key: value for key, value in size.items()}


def project_env(**extra: str) -> dict[str, str]:
    """This environment without loopml's or an outer make's settings."""
    drop = ("LOOPML_", "MAKE", "MFLAGS", "VIRTUAL_ENV", "ARGS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", **extra})
    return env


def run(
    args: list[str], cwd: Path, timeout: float = 240, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output."""
    return subprocess.run(
        args,
        cwd=cwd,
        env=project_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make(
    project: Path, target: str, *variables: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``make TARGET [VAR=value ...]`` in the project, on this environment."""
    return run(
        [
            "make",
            target,
            f"LOOPML_ENV={sys.prefix}",
            f"PYTHON={sys.executable}",
            *variables,
        ],
        project,
        timeout=420,
        **env,
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """The error output on one line (rich wraps it at the terminal width)."""
    return " ".join(result.stderr.split())


def new(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``loopml new ARGS``."""
    return run([*LOOPML, "new", *args], cwd, timeout=120)


def shop_with_churn(folder: Path) -> Path:
    """``loopml new shop`` (a regression workload) in ``folder``, then a
    classification workload ``churn`` added with ``--workload-only``.

    Returns:
        The project's folder.
    """
    made = new("shop", "--no-input", "-o", str(folder), cwd=folder)
    assert made.returncode == 0, made.stderr
    project = folder / "shop"
    added = new(
        "churn",
        "--workload-only",
        "--kind",
        "classification",
        "--no-input",
        cwd=project,
    )
    assert added.returncode == 0, added.stderr
    return project
