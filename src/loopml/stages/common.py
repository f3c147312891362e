"""What every stage shares: its result record, its database-outage error."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from loopml.core.errors import StageError, database_unreachable


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
