"""The contract of the canonical raw demand table, enforced with pandera.

Types are checked, never coerced: a loader that produces the wrong dtype is a
bug to fix at the source, not something to paper over downstream.
"""

from __future__ import annotations

import logging

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from loopml.workloads.errors import DataValidationError

log = logging.getLogger(__name__)

KEY_COLUMNS: list[str] = ["store_id", "item_id", "date"]
# How many example failing values each message line quotes.
_EXAMPLES = 3


def _complete_series(df: pd.DataFrame) -> pd.Series:
    # With a unique key, a series is gap-free exactly when its row count equals
    # the number of days between its first and last date.
    keys = ["store_id", "item_id"]
    groups = df.groupby(keys, sort=False, dropna=False, observed=True)["date"]
    span = (groups.transform("max") - groups.transform("min")).dt.days + 1
    return groups.transform("size") == span


def _text_column() -> pa.Column:
    # pandera's ``str`` dtype accepts category columns and never looks at the
    # values, so require plain object columns holding only strings.
    return pa.Column(
        object,
        pa.Check(lambda s: s.map(lambda v: isinstance(v, str)), name="values_are_str"),
        nullable=False,
    )


RAW_SCHEMA = pa.DataFrameSchema(
    {
        "date": pa.Column(
            "datetime64[ns]",
            [
                # pandera ignores the resolution, which merges downstream need.
                pa.Check(lambda s: s.dtype == "datetime64[ns]", name="unit_is_ns"),
                pa.Check(lambda s: s == s.dt.normalize(), name="is_midnight"),
            ],
            nullable=False,
        ),
        "store_id": _text_column(),
        "item_id": _text_column(),
        "sales": pa.Column("float64", pa.Check.ge(0), nullable=False),
        "price": pa.Column("float64", pa.Check.gt(0), nullable=False),
        "promo": pa.Column("int64", pa.Check.isin([0, 1]), nullable=False),
        "holiday": pa.Column("int64", pa.Check.isin([0, 1]), nullable=False),
    },
    checks=[pa.Check(_complete_series, name="series_complete")],
    unique=KEY_COLUMNS,
    strict=True,
    ordered=True,
    coerce=False,
    name="demand_raw",
)


def _subject(row: pd.Series) -> str:
    if row["column"] == RAW_SCHEMA.name:
        # Missing, extra or misordered columns: pandera names the column here.
        return f"column {row['failure_case']!r}"
    if row["check"] == "multiple_fields_uniqueness":
        return f"key {KEY_COLUMNS}"
    if row["schema_context"] == "DataFrameSchema":
        return "the table"
    return f"column {row['column']!r}"


def _describe(failures: pd.DataFrame) -> str:
    """Summarise pandera's failure table as one readable paragraph."""
    frame = failures.assign(
        subject=failures.apply(_subject, axis=1),
        check=failures["check"].astype(str),
        position=pd.to_numeric(failures["index"], errors="coerce"),
    ).sort_values("position", kind="stable")
    row_level = frame["subject"].isin([f"key {KEY_COLUMNS}", "the table"])
    frame["example"] = frame["failure_case"].map(repr)
    frame.loc[row_level, "example"] = "row " + frame["index"].astype(str)
    parts = []
    for (subject, check), rows in frame.groupby(["subject", "check"], sort=True):
        count = rows["index"].nunique() or len(rows)
        examples = ", ".join(rows["example"].drop_duplicates().head(_EXAMPLES))
        parts.append(f"{subject} failed {check} ({count} case(s), e.g. {examples})")
    return "The raw demand table failed validation: " + "; ".join(parts) + "."


def validate_raw(df: pd.DataFrame) -> pd.DataFrame:
    """Check a raw demand table against :data:`RAW_SCHEMA`, all checks at once.

    Args:
        df: a table claiming to be the canonical raw demand table.

    Returns:
        The same table, unchanged, when it is valid.

    Raises:
        DataValidationError: naming every failing column and check in its
            message; ``failure_cases`` holds pandera's full failure table, whose
            ``index`` is the row position (the frame's own index is ignored).
    """
    try:
        # pandera's failure report breaks on a non-unique index, which is one
        # of the ways bad data arrives, so validate by position.
        RAW_SCHEMA.validate(df.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        failures = errors.failure_cases.reset_index(drop=True)
        message = _describe(failures)
        log.debug("%s", message)
        raise DataValidationError(message, failures) from errors
    log.info("raw demand table valid: %d rows", len(df))
    return df
