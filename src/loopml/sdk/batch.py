"""How a workload describes its raw table to the platform's daily batches.

:class:`BatchSpec` names the time column, the canonical order and the
personal columns; workloads that can cut one day from their source more
cheaply than loading everything implement :class:`DayLoader`, and those with
checks that compare a batch with the days before it :class:`BatchValidator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from loopml.core.config import Settings


@dataclass(frozen=True)
class BatchSpec:
    """How a workload's raw table is cut into days and kept in order.

    Attributes:
        time_column: the datetime column whose day a row belongs to.
        sort_columns: the canonical row order of the table (empty: by time).
        personal_columns: columns pseudonymised by ``ingest`` before storing.
    """

    time_column: str = "date"
    sort_columns: tuple[str, ...] = ()
    personal_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class DailyBatch:
    """The days a daily ingestion added since the last validation.

    Attributes:
        days: the new days, oldest first.
        reference_rows_per_day: rows per day of the previous validated batch,
            or ``None`` when nothing was validated yet.
    """

    days: tuple[pd.Timestamp, ...]
    reference_rows_per_day: float | None = None


@runtime_checkable
class DayLoader(Protocol):
    """A workload that can load one day's batch from its source."""

    def load_day(self, settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
        """Return the source's rows of ``day`` (possibly none)."""


@runtime_checkable
class BatchValidator(Protocol):
    """A workload with checks that compare a daily batch with earlier days."""

    def validate_batch(
        self, settings: Settings, raw: pd.DataFrame, batch: DailyBatch
    ) -> pd.DataFrame:
        """Validate the union ``raw`` knowing which days are new."""


def spec_of(workload: object) -> BatchSpec:
    """The workload's ``batch_spec``, or the default (a ``date`` column)."""
    spec = getattr(workload, "batch_spec", None)
    return spec if isinstance(spec, BatchSpec) else BatchSpec()
