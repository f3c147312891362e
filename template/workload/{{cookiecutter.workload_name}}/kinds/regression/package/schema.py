"""The contracts of the raw table and of the rows the model is asked about.

Types are checked, never coerced: a loader that produces a wrong dtype is a
bug to fix at the source. Requests get the very column checks of the raw
table, so serving refuses what training would refuse.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from loopml.core.errors import DataValidationError
from loopml.sdk.failures import describe
from pandera.errors import SchemaErrors

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import KEY_COLUMNS, LABEL
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import INPUT_COLUMNS

RAW_COLUMNS: dict[str, pa.Column] = {
    "order_id": pa.Column(str, nullable=False, unique=True),
    "date": pa.Column(
        "datetime64[ns]",
        pa.Check(lambda s: s == s.dt.normalize(), name="is_midnight"),
        nullable=False,
    ),
    "distance_km": pa.Column("float64", pa.Check.in_range(0, 100), nullable=False),
    "items": pa.Column("int64", pa.Check.in_range(1, 100), nullable=False),
    "hour": pa.Column("int64", pa.Check.in_range(0, 23), nullable=False),
    "rain": pa.Column("int64", pa.Check.isin([0, 1]), nullable=False),
    "courier_load": pa.Column("float64", pa.Check.in_range(0, 1), nullable=False),
    LABEL: pa.Column("float64", pa.Check.in_range(0, 600), nullable=False),
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


def _validate(schema: pa.DataFrameSchema, frame: pd.DataFrame, what: str) -> pd.DataFrame:
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as error:
        message = describe(what, error.failure_cases, schema.name, KEY_COLUMNS)
        raise DataValidationError(message, error.failure_cases) from error


def validate_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a raw table, every check at once.

    Raises:
        DataValidationError: one paragraph naming each failing column and check.
    """
    return _validate(RAW_SCHEMA, frame, "raw {{ cookiecutter.workload_name }} table")


def validate_request(frame: pd.DataFrame) -> pd.DataFrame:
    """Check rows to predict (dates may come as ISO strings)."""
    rows = frame.copy()
    if "date" in rows.columns:
        rows["date"] = pd.to_datetime(rows["date"]).astype("datetime64[ns]")
    return _validate(REQUEST_SCHEMA, rows, "{{ cookiecutter.workload_name }} request")
