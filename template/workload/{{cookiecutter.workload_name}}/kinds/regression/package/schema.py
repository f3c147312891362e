"""The contracts of the raw table, of daily batches and of requests.

Types are checked, never coerced: a loader that produces a wrong dtype is a
bug to fix at the source. Requests get the very value ranges of the raw
table (:data:`RANGES`, used by both the pandera schema and the pydantic
:class:`Row` the service validates), so serving refuses what training would
refuse.

The table is a daily feed: every day between its first and last has orders
(``days_contiguous``). A day ingested after a gap is refused, and so is a
daily batch with far fewer or more rows than the batch before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
from loopml.core.errors import DataValidationError
from loopml.sdk.failures import describe, failure_row
from pandera.errors import SchemaErrors
from pydantic import BaseModel, ConfigDict, Field

from .data import KEY_COLUMNS, LABEL, TIME_COLUMN
from .features import INPUT_COLUMNS

#: the allowed range of every numeric column (raw table and requests).
RANGES: dict[str, tuple[float, float]] = {
    "distance_km": (0, 100),
    "items": (1, 100),
    "hour": (0, 23),
    "courier_load": (0, 1),
    LABEL: (0, 600),
}
#: the days a ``datetime64[ns]`` column can hold (1677-09-22 .. 2262-04-11):
#: a request date outside them could never become a model input.
DATE_RANGE: tuple[dt.date, dt.date] = (
    pd.Timestamp.min.ceil("D").date(),
    pd.Timestamp.max.floor("D").date(),
)
#: table-level checks, and the column each is about.
CHECK_COLUMNS = {
    "days_contiguous": TIME_COLUMN,
    "rows_per_day_in_bounds": TIME_COLUMN,
    "not_empty": TIME_COLUMN,
}


def _in_range(column: str) -> pa.Check:
    return pa.Check.in_range(*RANGES[column])


RAW_COLUMNS: dict[str, pa.Column] = {
    "order_id": pa.Column(str, nullable=False, unique=True),
    "date": pa.Column(
        "datetime64[ns]",
        pa.Check(lambda s: s == s.dt.normalize(), name="is_midnight"),
        nullable=False,
    ),
    "distance_km": pa.Column("float64", _in_range("distance_km"), nullable=False),
    "items": pa.Column("int64", _in_range("items"), nullable=False),
    "hour": pa.Column("int64", _in_range("hour"), nullable=False),
    "rain": pa.Column("int64", pa.Check.isin([0, 1]), nullable=False),
    "courier_load": pa.Column("float64", _in_range("courier_load"), nullable=False),
    LABEL: pa.Column("float64", _in_range(LABEL), nullable=False),
}

RAW_SCHEMA = pa.DataFrameSchema(
    RAW_COLUMNS,
    checks=pa.Check(lambda df: len(df) > 0, name="not_empty"),
    strict=True,
    coerce=False,
    name="{{ cookiecutter.workload_name }}_raw",
)

REQUEST_SCHEMA = pa.DataFrameSchema(
    {name: RAW_COLUMNS[name] for name in INPUT_COLUMNS},
    strict="filter",
    coerce=False,
    name="{{ cookiecutter.workload_name }}_requests",
)


class Row(BaseModel):
    """One order to predict the duration of (a row of ``/v1/<workload>/predict``)."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(
        ge=DATE_RANGE[0],
        le=DATE_RANGE[1],
        description="Day of the order.",
        examples=["2025-03-04"],
    )
    distance_km: float = Field(
        ge=RANGES["distance_km"][0], le=RANGES["distance_km"][1], examples=[4.0]
    )
    items: int = Field(ge=RANGES["items"][0], le=RANGES["items"][1], examples=[3])
    hour: int = Field(ge=RANGES["hour"][0], le=RANGES["hour"][1], examples=[19])
    rain: Literal[0, 1] = 0
    courier_load: float = Field(
        ge=RANGES["courier_load"][0], le=RANGES["courier_load"][1], examples=[0.3]
    )


def _gaps(frame: pd.DataFrame) -> list[dict[str, object]]:
    """A failure per run of missing days between the first and the last day."""
    column = frame.get(TIME_COLUMN)
    if column is None or not pd.api.types.is_datetime64_dtype(column) or frame.empty:
        return []  # the schema reports the broken column
    present = pd.DatetimeIndex(column.dt.normalize().unique())
    every = pd.date_range(present.min(), present.max(), freq="D")
    missing = every.difference(present)
    failures = []
    for day in missing:
        if day - pd.Timedelta(days=1) in missing:
            continue  # one failure per gap, named by its first day
        after = present[present > day].min()
        failures.append(
            failure_row(
                "days_contiguous",
                TIME_COLUMN,
                f"no rows from {day:%Y-%m-%d} to "
                f"{after - pd.Timedelta(days=1):%Y-%m-%d}",
            )
        )
    return failures


def _daily(
    frame: pd.DataFrame,
    new_days: Sequence[pd.Timestamp],
    reference_rows_per_day: float | None,
    min_rows_ratio: float,
    max_rows_ratio: float,
) -> list[dict[str, object]]:
    """Checks of the new days of a daily batch against the batch before."""
    column = frame.get(TIME_COLUMN)
    if column is None or not pd.api.types.is_datetime64_dtype(column):
        return []
    days = column.dt.normalize()
    failures = []
    for day in sorted(pd.Timestamp(d).normalize() for d in new_days):
        rows = int((days == day).sum())
        label = f"{day:%Y-%m-%d}"
        if rows == 0:
            failures.append(failure_row("not_empty", TIME_COLUMN, f"{label}: no rows"))
        elif reference_rows_per_day:
            low = min_rows_ratio * reference_rows_per_day
            high = max_rows_ratio * reference_rows_per_day
            if not low <= rows <= high:
                failures.append(
                    failure_row(
                        "rows_per_day_in_bounds",
                        TIME_COLUMN,
                        f"{label}: {rows} rows, previous batch "
                        f"{reference_rows_per_day:g}/day, allowed {low:g}..{high:g}",
                    )
                )
    return failures


def _error(
    schema: pa.DataFrameSchema, what: str, failures: pd.DataFrame
) -> DataValidationError:
    message = describe(what, failures, schema.name, KEY_COLUMNS, CHECK_COLUMNS)
    return DataValidationError(message, failures)


def validate_raw(
    frame: pd.DataFrame,
    new_days: Sequence[pd.Timestamp] = (),
    reference_rows_per_day: float | None = None,
    min_rows_ratio: float = 0.5,
    max_rows_ratio: float = 2.0,
) -> pd.DataFrame:
    """Check a raw table, every check at once.

    Args:
        frame: the table.
        new_days: the days a daily batch adds (empty: a whole snapshot).
        reference_rows_per_day: rows per day of the previous validated batch
            (``None``: no volume check).
        min_rows_ratio: lowest allowed multiple of that volume for a new day.
        max_rows_ratio: highest allowed multiple.

    Returns:
        The same table, unchanged, when it is valid.

    Raises:
        DataValidationError: one paragraph naming each failing column and check.
    """
    table = frame.reset_index(drop=True)  # failure rows are positions
    parts = []
    try:
        RAW_SCHEMA.validate(table, lazy=True)
    except SchemaErrors as error:
        parts.append(error.failure_cases)
    extra = _gaps(table) + _daily(
        table, new_days, reference_rows_per_day, min_rows_ratio, max_rows_ratio
    )
    if extra:
        parts.append(pd.DataFrame(extra))
    if parts:
        failures = pd.concat(parts, ignore_index=True)
        raise _error(RAW_SCHEMA, "raw {{ cookiecutter.workload_name }} table", failures)
    return frame


def _is_day(value: Any) -> bool:
    """Whether ``value`` reads as a time ``datetime64[ns]`` holds.

    A missing value passes: the schema's ``not_nullable`` reports it.
    """
    try:
        pd.Timestamp(value).as_unit("ns")
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _parse_dates(rows: pd.DataFrame, what: str) -> pd.DataFrame:
    """``rows`` with ``date`` as ``datetime64[ns]`` (ISO strings, dates, times).

    Raises:
        DataValidationError: naming ``date`` and each value that is no day
            ``datetime64[ns]`` can hold (out of range, or not a date at all).
    """
    try:
        rows["date"] = pd.to_datetime(rows["date"]).astype("datetime64[ns]")
        return rows
    except (ValueError, TypeError, OverflowError) as error:
        check = "is_a_date_in_range({}, {})".format(*DATE_RANGE)
        bad = rows["date"][~rows["date"].map(_is_day)]
        # One failure per bad row, its index naming the row in a 422.
        cases = [
            failure_row(check, "date", str(value)) | {"index": at}
            for at, value in bad.items()
        ]
        # None found one by one: pandas refused the column as a whole.
        cases = cases or [failure_row(check, "date", str(error))]
        raise _error(REQUEST_SCHEMA, what, pd.DataFrame(cases)) from error


def validate_request(frame: pd.DataFrame) -> pd.DataFrame:
    """Check rows to predict (dates may come as ISO strings).

    Raises:
        DataValidationError: naming each failing column and check (a date
            that cannot be read, or is out of ``DATE_RANGE``, names ``date``).
    """
    what = "{{ cookiecutter.workload_name }} request"
    rows = frame.reset_index(drop=True)
    if "date" in rows.columns:
        rows = _parse_dates(rows, what)
    try:
        return REQUEST_SCHEMA.validate(rows, lazy=True)
    except SchemaErrors as error:
        raise _error(REQUEST_SCHEMA, what, error.failure_cases) from error
