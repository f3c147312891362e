"""The contracts of the recsys tables, enforced with pandera.

Types are checked, never coerced: a loader producing the wrong dtype is a bug
to fix at the source. :func:`validate_data` checks the three tables (and that
every interaction points at a known user and item); :func:`validate_raw`
checks the flat event log the platform stores, then its three tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from loopml.core.errors import DataValidationError
from loopml.sdk.failures import failure_row
from loopml.workloads.recsys.tables import (
    AGE_BANDS,
    EVENT_COLUMNS,
    EVENTS,
    UNKNOWN_AGE_BAND,
    RecsysData,
)

log = logging.getLogger(__name__)

# How many example failing values each message part quotes.
_EXAMPLES = 3


def _text(unique: bool = False) -> pa.Column:
    return pa.Column(str, nullable=False, unique=unique)


def _time() -> pa.Column:
    return pa.Column("datetime64[ns]", nullable=False)


_USER_COLUMNS: dict[str, pa.Column] = {
    "segment": _text(),
    "seniority": pa.Column("int64", pa.Check.isin([-1, 0, 1, 2, 3, 4])),
    "department": _text(),
    "hire_date": _time(),
    "age_band": pa.Column(
        str, pa.Check.isin([*AGE_BANDS, UNKNOWN_AGE_BAND]), nullable=False
    ),
}
_ITEM_COLUMNS: dict[str, pa.Column] = {
    "title": _text(),
    "category": _text(),
    "level": pa.Column("int64", pa.Check.isin([0, 1, 2, 3])),
    "duration_hours": pa.Column(
        "float64", [pa.Check.ge(0), pa.Check.lt(float("inf"))], nullable=False
    ),
    "roles": _text(),
    "created": _time(),
}
_INTERACTION_COLUMNS: dict[str, pa.Column] = {
    "user_id": _text(),
    "item_id": _text(),
    "timestamp": pa.Column(
        "datetime64[ns]",
        pa.Check(
            lambda s: s >= s.cummax(),
            name="sorted",
            error="interactions must be sorted by timestamp",
        ),
        nullable=False,
    ),
    "event": pa.Column(str, pa.Check.isin(list(EVENTS)), nullable=False),
    "weight": pa.Column(
        "float64", [pa.Check.gt(0), pa.Check.lt(float("inf"))], nullable=False
    ),
}

#: An empty table passes every column check: it would replace the data
#: (``validated.parquet``) and leave every later stage nothing to work on.
_NOT_EMPTY = pa.Check(lambda df: len(df) > 0, name="not_empty")

USERS_SCHEMA = pa.DataFrameSchema(
    {"user_id": _text(unique=True), **_USER_COLUMNS},
    checks=_NOT_EMPTY,
    strict=True,
    ordered=True,
    coerce=False,
    name="users",
)
ITEMS_SCHEMA = pa.DataFrameSchema(
    {"item_id": _text(unique=True), **_ITEM_COLUMNS},
    checks=_NOT_EMPTY,
    strict=True,
    ordered=True,
    coerce=False,
    name="items",
)
INTERACTIONS_SCHEMA = pa.DataFrameSchema(
    _INTERACTION_COLUMNS,
    checks=_NOT_EMPTY,
    strict=True,
    ordered=True,
    coerce=False,
    name="interactions",
)
_ALL_COLUMNS = {**_INTERACTION_COLUMNS, **_USER_COLUMNS, **_ITEM_COLUMNS}
EVENT_LOG_SCHEMA = pa.DataFrameSchema(
    {name: _ALL_COLUMNS[name] for name in EVENT_COLUMNS},
    checks=_NOT_EMPTY,
    strict=True,
    ordered=True,
    coerce=False,
    name="recsys_event_log",
)


def _describe(failures: pd.DataFrame) -> str:
    """Summarise a failure table (with a ``table`` column) as one paragraph."""
    frame = failures.assign(
        column=failures["column"].fillna("<table>").astype(str),
        check=failures["check"].astype(str),
    )
    parts = []
    groups = frame.groupby(["table", "column", "check"], sort=False)
    for (table, column, check), rows in groups:
        examples = ", ".join(
            repr(value) for value in rows["failure_case"].head(_EXAMPLES).tolist()
        )
        parts.append(
            f"{table} column {column!r} failed {check} ({len(rows)} case(s), "
            f"e.g. {examples})"
        )
    return "The recsys data failed validation: " + "; ".join(parts) + "."


def _failures(schema: pa.DataFrameSchema, table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Every failure of one table (empty when it is valid)."""
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as errors:
        return errors.failure_cases.reset_index(drop=True).assign(table=table)
    return pd.DataFrame()


def _raise(failures: pd.DataFrame) -> None:
    message = _describe(failures)
    log.warning("%s", message)
    raise DataValidationError(message, failures)


def _unknown_keys(data: RecsysData) -> pd.DataFrame:
    """One failure row per interaction pointing at a missing user or item."""
    found = []
    for column, table in (("user_id", data.users), ("item_id", data.items)):
        unknown = ~data.interactions[column].isin(table[column])
        found.append(
            pd.DataFrame(
                {
                    "column": column,
                    "check": f"known_{column.removesuffix('_id')}",
                    "failure_case": data.interactions.loc[unknown, column],
                    "index": data.interactions.index[unknown],
                }
            )
        )
    return pd.concat(found, ignore_index=True)


def validate_data(data: RecsysData) -> RecsysData:
    """Check the three tables, all at once, then the interactions' references.

    Args:
        data: tables claiming to be canonical.

    Returns:
        The same tables, unchanged, when they are valid.

    Raises:
        DataValidationError: naming every failing table, column and check;
            ``failure_cases`` holds the full failure table (with ``table``).
    """
    checks = (
        (USERS_SCHEMA, "users", data.users),
        (ITEMS_SCHEMA, "items", data.items),
        (INTERACTIONS_SCHEMA, "interactions", data.interactions),
    )
    found = [_failures(schema, table, df) for schema, table, df in checks]
    if any(len(f) for f in found):
        _raise(pd.concat([f for f in found if len(f)], ignore_index=True))
    unknown = _unknown_keys(data)
    if len(unknown):
        _raise(unknown.assign(table="interactions"))
    log.info(
        "recsys tables valid: %d users, %d items, %d interactions",
        len(data.users),
        len(data.items),
        len(data.interactions),
    )
    return data


def validate_raw(df: pd.DataFrame) -> pd.DataFrame:
    """Check the flat event log (see ``RecsysData.to_frame``) and its tables.

    Besides column types and ranges, a user or item whose attributes differ
    between rows is reported as a duplicated ``user_id``/``item_id``.

    Args:
        df: a table claiming to be the recsys event log.

    Returns:
        The same table, unchanged, when it is valid.

    Raises:
        DataValidationError: naming every failing column and check.
    """
    failures = _failures(EVENT_LOG_SCHEMA, "event log", df)
    if len(failures):
        _raise(failures)
    validate_data(RecsysData.from_frame(df))
    return df


def validate_batch(df: pd.DataFrame, new_days: Sequence[pd.Timestamp]) -> pd.DataFrame:
    """:func:`validate_raw`, then each new day of a daily batch holds events.

    An empty day (a date outside the source, say) passed every check, and
    ``features`` then moved the online store's day forward with nothing in it.

    Raises:
        DataValidationError: the schema's failures, or one per empty day.
    """
    validate_raw(df)
    days = set(df["timestamp"].dt.normalize())
    failures = [
        failure_row("not_empty", "timestamp", f"{day:%Y-%m-%d}: no events")
        for day in sorted({pd.Timestamp(d).normalize() for d in new_days})
        if day not in days
    ]
    if failures:
        _raise(pd.DataFrame(failures).assign(table="interactions"))
    return df
