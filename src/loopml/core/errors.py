"""Errors shared by the platform and every workload, caught by type."""

from __future__ import annotations

import pandas as pd


class NotFittedError(RuntimeError):
    """A model was asked to predict (or explain itself) before ``fit``."""


class DataValidationError(Exception):
    """A raw table broke its schema.

    Attributes:
        failure_cases: one row per failing value or check, as reported by the
            validator (columns such as ``column``, ``check``, ``failure_case``
            and ``index``); empty when the validator gave no details.
    """

    def __init__(self, message: str, failure_cases: pd.DataFrame | None = None):
        """Keep the readable message and the machine-readable failures.

        Args:
            message: one paragraph naming every failing column and check.
            failure_cases: the validator's table of failures.
        """
        super().__init__(message)
        self.failure_cases: pd.DataFrame = (
            failure_cases if failure_cases is not None else pd.DataFrame()
        )


class StageError(RuntimeError):
    """A stage failed in a way the user must act on (message says how)."""


def database_unreachable(error: BaseException) -> str | None:
    """Why a database connection failed, when that is what ``error`` is about.

    Walks the exception chain (MLflow wraps SQLAlchemy, which wraps the
    driver) for the PostgreSQL driver's ``OperationalError``: refused, lost
    or closed connections, a server shutting down.

    Returns:
        The driver's first line (e.g. ``connection to server at "127.0.0.1",
        port 5432 failed: Connection refused``), or ``None`` for any other
        error.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        kind = type(current)
        if kind.__name__ == "OperationalError" and kind.__module__.startswith(
            "psycopg"
        ):
            lines = [line.strip() for line in str(current).splitlines()]
            return next((line for line in lines if line), kind.__name__)
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError
        pending += [
            current.__cause__,
            current.__context__,
            orig if isinstance(orig, BaseException) else None,
        ]
    return None
