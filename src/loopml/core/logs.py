"""Logging setup: one function, configured with ``dictConfig``.

Records carry the pipeline stage they were logged in (``stage_context``), so a
line says where in the loop it happened. People read the stream handler;
machines read the rotating file under ``<home>/logs`` (JSON lines if asked).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.config
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STAGE: contextvars.ContextVar[str] = contextvars.ContextVar("stage", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(stage)s] %(message)s"


class StageFilter(logging.Filter):
    """Stamp every record with the current stage name."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``record.stage``; never drops a record."""
        record.stage = _STAGE.get()
        return True


class DropDebugFilter(logging.Filter):
    """Drop DEBUG records (used in production, whatever the level says)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep records above DEBUG."""
        return record.levelno > logging.DEBUG


class DatabaseOutageFilter(logging.Filter):
    """Drop MLflow's traceback for every call made while its database is down.

    MLflow logs one at ERROR for each failed query (the service's poller
    makes one per workload every ``serving.poll_seconds``); loopml says it
    once instead: the service's "model registry unreachable" warning,
    ``/readyz``, a stage's one-line error.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but those about a lost database connection."""
        # Here, not at the top: loopml.core.errors imports pandas, which
        # `loopml --help` must not pay for.
        from loopml.core.errors import database_unreachable

        error = record.exc_info[1] if record.exc_info else None
        return error is None or database_unreachable(error) is None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, stage, message."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a JSON line."""
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "stage": getattr(record, "stage", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


@contextlib.contextmanager
def stage_context(stage: str) -> Iterator[None]:
    """Tag the log records emitted inside the block with ``stage``."""
    token = _STAGE.set(stage)
    try:
        yield
    finally:
        _STAGE.reset(token)


def setup_logging(
    home: Path,
    level: str = "INFO",
    json_lines: bool = False,
    production: bool = False,
    console: bool = True,
    console_level: str = "INFO",
) -> Path:
    """Configure the ``loopml`` loggers.

    Args:
        home: the loopml home; the log file goes to ``<home>/logs/loopml.log``.
        level: the lowest level to emit.
        json_lines: write the file as JSON lines instead of text.
        production: drop DEBUG records whatever ``level`` says.
        console: also log to standard error.
        console_level: the lowest level shown on standard error (the file
            still gets everything from ``level`` up).

    Returns:
        The path of the log file.
    """
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "loopml.log"
    filters = ["stage", "no_debug"] if production else ["stage"]
    handlers: dict[str, dict[str, Any]] = {
        "file": {
            "class": "logging.handlers.RotatingFileHandler",
            "filename": str(log_file),
            "maxBytes": 5_000_000,
            "backupCount": 3,
            "encoding": "utf-8",
            "formatter": "json" if json_lines else "text",
            "filters": filters,
        }
    }
    if console:
        handlers["console"] = {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "text",
            "level": console_level,
            "filters": filters,
        }
    quiet = (
        console_level != "DEBUG" and logging.getLevelName(console_level) > logging.INFO
    )
    loggers: dict[str, dict[str, Any]] = {
        "loopml": {
            "level": level,
            "handlers": list(handlers),
            "propagate": False,
        },
        # Where captured warnings go (see below); Python's way when not quiet.
        "py.warnings": (
            {"level": "WARNING", "handlers": ["file"], "propagate": False}
            if quiet
            else {"handlers": [], "propagate": True}
        ),
    }
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {
                "stage": {"()": StageFilter},
                "no_debug": {"()": DropDebugFilter},
            },
            "formatters": {
                "text": {"format": TEXT_FORMAT, "datefmt": "%H:%M:%S"},
                "json": {"()": JsonFormatter},
            },
            "handlers": handlers,
            "loggers": loggers,
        }
    )
    # MLflow's notices about our own, deliberate choices (a cloudpickled
    # python_model we wrote, explicit pip requirements) are noise for users.
    for noisy in ("mlflow.pyfunc", "mlflow.utils.environment", "mlflow.models.model"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    quiet_database_outages()
    # Python warnings go to the log file alone when the console is quiet: a
    # library may let some through quiet_libraries' "ignore" (importing feast
    # puts "once" for deprecations first), and they are not the user's to act on.
    logging.captureWarnings(quiet)
    if quiet:
        quiet_libraries()
    return log_file


@contextlib.contextmanager
def mlflow_notices_hidden() -> Iterator[None]:
    """Hide the notices MLflow prints (e.g. ``mlflow.register_model``'s
    "Successfully registered model ..."), while its loggers show errors only
    (:func:`quiet_libraries`); with ``--verbose`` they are shown.

    They are printed, not logged, through MLflow's own stream, which can be
    turned off (what ``mlflow.utils.logging_utils.disable_logging`` does).
    """
    from mlflow.utils import logging_utils

    stream = logging_utils.MLFLOW_LOGGING_STREAM
    hide = (
        stream.enabled
        and logging.getLogger("mlflow").getEffectiveLevel() >= logging.ERROR
    )
    if hide:
        stream.enabled = False
    try:
        yield
    finally:
        if hide:
            stream.enabled = True


def quiet_database_outages() -> None:
    """Drop MLflow's trace per failed query while its database is down (once)."""
    outages = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, DatabaseOutageFilter) for f in outages.filters):
        outages.addFilter(DatabaseOutageFilter())


#: Libraries whose INFO lines and warnings clutter a command's output.
LIBRARIES = ("mlflow", "alembic", "sqlalchemy", "feast", "ray", "evidently", "urllib3")


def quiet_libraries() -> None:
    """Show only the libraries' errors (``--verbose`` keeps everything).

    MLflow and Alembic log every database migration at INFO to their own
    stderr handlers; Python warnings from libraries (deprecations, hints about
    our deliberate choices) are not the user's to act on.
    """
    import os
    import warnings

    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    # MLflow sets its loggers' level again when it is imported: to this.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    warnings.filterwarnings("ignore")
