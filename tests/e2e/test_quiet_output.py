"""A command's console shows loopml's lines, not its libraries' notices.

Without ``--verbose`` the console shows loopml's stage lines and errors;
MLflow's printed notices, its INFO lines and Python warnings from libraries
are not the user's to act on (warnings go to the log file). Each check runs
in a fresh process: what a library does at import (MLflow resets its
loggers' level, importing Feast puts "once" for deprecation warnings first)
is what is tested.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import conftest

#: What MLflow and SQLAlchemy printed on a first `loopml run` before.
NOISE = (
    "Successfully registered model",
    "Created version",
    "INFO mlflow",
    "Creating initial MLflow database tables",
    "Warning:",
)


def test_train_on_a_new_tracking_database_prints_only_loopml_lines(
    demand_home: Path,
) -> None:
    (demand_home / "mlflow.db").unlink()  # created again: MLflow's INFO lines
    env = conftest.subprocess_env(demand_home)
    env.pop("MLFLOW_LOGGING_LEVEL", None)  # the command must set it itself
    done = subprocess.run(
        [sys.executable, "-m", "loopml.cli", "train", "-w", "demand"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    assert "version 1 registered as challenger" in shown
    assert [n for n in NOISE if n in shown] == [], shown


WARN = """
import sys, warnings
from pathlib import Path
from loopml.core.logs import setup_logging
setup_logging(Path(sys.argv[1]), console_level=sys.argv[2])
warnings.simplefilter("once", DeprecationWarning)  # as importing feast does
warnings.warn("an old way, from a library", DeprecationWarning)
"""


def test_library_warnings_go_to_the_log_file_unless_verbose(tmp_path: Path) -> None:
    for level, on_console in (("WARNING", False), ("INFO", True)):
        home = tmp_path / level
        done = subprocess.run(
            [sys.executable, "-c", WARN, str(home), level],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert ("an old way" in done.stderr) is on_console, done.stderr
        logged = (home / "logs" / "loopml.log").read_text()
        assert ("an old way, from a library" in logged) is not on_console
