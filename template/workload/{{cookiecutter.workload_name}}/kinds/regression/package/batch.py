"""The daily batch: the champion's predicted duration of every order of a day.

``loopml batch -w {{ cookiecutter.workload_name }} [--date D]`` scores every
validated order of day ``D`` (default: the last validated day) and stores
one row per order (``order_id``, ``prediction``, plus the day and the model
version) in ``<home>/batch/{{ cookiecutter.workload_name }}/date=D.parquet``
and the SQL table ``{{ cookiecutter.workload_name }}_predictions``: next to
the actual durations, the day's "promised vs delivered" report. Orders are
only known once they are placed, so there is no next-day batch; if your
source knows tomorrow's orders (pre-orders, schedules), score those here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa
from loopml.core.config import Settings
from loopml.sdk.capabilities import BatchScorer, BatchWork

from .data import TIME_COLUMN
from .features import INPUT_COLUMNS
from .pyfunc import python_model

class {{ cookiecutter.__class_name }}BatchScorer(BatchScorer):
    """Predicted duration of every order of a validated day."""

    table: ClassVar[str] = "{{ cookiecutter.workload_name }}_predictions"
    schema: ClassVar[pa.Schema] = pa.schema(
        [("order_id", pa.string()), ("prediction", pa.float64())]
    )
    key_columns: ClassVar[tuple[str, ...]] = ("order_id",)
    lookup_key: ClassVar[str | None] = "order_id"
    #: orders scored per block (bounded memory; the unit of work on Ray).
    block_rows: ClassVar[int] = 50_000

    def default_day(
        self, settings: Settings, data: pd.DataFrame, time_column: str
    ) -> dt.date:
        """The last validated day: its orders exist (and have their actuals)."""
        day: dt.date = pd.Timestamp(data[time_column].max()).normalize().date()
        return day

    def _orders(self, data: pd.DataFrame, day: dt.date) -> pd.DataFrame:
        return data[data[TIME_COLUMN].dt.normalize() == pd.Timestamp(day)]

    def work(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> BatchWork:
        """The validated orders of ``day``, with their model inputs.

        Raises:
            ValueError: no validated order on ``day``.
        """
        orders = self._orders(data, day)
        if orders.empty:
            last = pd.Timestamp(data[TIME_COLUMN].max()).date()
            raise ValueError(
                f"no validated {{ cookiecutter.workload_name }} orders on {day} "
                f"(last validated day: {last}); ingest and validate it first"
            )
        return BatchWork(orders[["order_id", *INPUT_COLUMNS]])

    def score_block(self, model: Any, shared: Any, keys: pd.DataFrame) -> pd.DataFrame:
        """The predicted duration of each order of the block."""
        answer = python_model(model).predict(None, keys[INPUT_COLUMNS])
        return pd.DataFrame(
            {
                "order_id": keys["order_id"].astype(str).to_numpy(),
                "prediction": answer["prediction"].to_numpy(dtype=float),
            }
        )

    def count(self, model: Any, data: pd.DataFrame) -> int:
        """Orders of the last validated day (the default batch)."""
        last = pd.Timestamp(data[TIME_COLUMN].max()).normalize()
        return int((data[TIME_COLUMN].dt.normalize() == last).sum())
