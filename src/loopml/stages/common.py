"""What every stage shares: its result record, its database-outage error."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.core.errors import StageError, database_unreachable
from loopml.sdk.workload import get_workload


@dataclass
class StageResult:
    """The outcome of one stage, for the run summary and the state files."""

    stage: str
    workload: str
    status: str = "ok"
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def database_errors(stage: str) -> Iterator[None]:
    """Turn a lost database connection into a one-line :class:`StageError`.

    The MLflow registry and tracking store, Feast's SQL registry and the
    batch results table are PostgreSQL in production; when it is down,
    MLflow, SQLAlchemy and the driver each wrap the failure in a multi-line
    error. The stage's own writes are each one transaction, so re-running
    it once the database is back is the whole remedy.

    Raises:
        StageError: naming the stage and the driver's reason.
    """
    try:
        yield
    except StageError:
        raise
    except Exception as error:
        reason = database_unreachable(error)
        if reason is None:
            raise
        raise StageError(
            f"the database is unreachable ({reason}); run `loopml {stage}` "
            "again once it is back"
        ) from error


def workload_code(workload_name: str) -> Path:
    """The folder of the top-level package that defines a workload.

    loopml's own for demand and recsys; ``src/<project>`` for a workload of
    a project made by ``loopml new`` (the whole package: the workload's
    folder and any module of the project it imports).
    """
    return package_folder(type(get_workload(workload_name)).__module__)


def package_folder(module_name: str) -> Path:
    """The folder of a module's top-level package (a lone module's folder)."""
    module = importlib.import_module(module_name.split(".")[0])
    if module.__file__ is None:  # a namespace package: its first folder
        return Path(next(iter(module.__path__))).resolve()
    return Path(module.__file__).resolve().parent
