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
