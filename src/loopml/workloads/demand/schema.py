"""The demand contracts, enforced with pandera at every boundary.

* :data:`RAW_SCHEMA`: the canonical raw table (ingest -> validate), including
  date continuity per series; :func:`validate_raw` adds, for a daily batch,
  the checks that compare the new days with what came before.
* :data:`TRAINING_SCHEMA`: the training examples, checked before fitting.
* :data:`REQUEST_SCHEMA`: rows to forecast, with the very column checks of the
  raw table, so serving refuses what training would refuse.

Types are checked, never coerced: a loader that produces the wrong dtype is a
bug to fix at the source, not something to paper over downstream. Column order
is part of the raw contract (``ordered=True``: loaders emit the canonical
order); request frames come from JSON objects, so their order is free.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from loopml.core.errors import DataValidationError
from loopml.sdk.failures import describe, failure_row
from loopml.workloads.demand.features import FEATURE_COLUMNS

log = logging.getLogger(__name__)

KEY_COLUMNS: list[str] = ["store_id", "item_id", "date"]
SERIES_COLUMNS: list[str] = ["store_id", "item_id"]
REQUEST_COLUMNS: list[str] = ["store_id", "item_id", "date", "price", "promo"]
REQUEST_COLUMNS += ["holiday"]
LABEL = "sales"
#: demand has no personal data; see ``loopml.data.privacy`` for how to mark some.
PERSONAL_COLUMNS: tuple[str, ...] = ()
# Table-level checks and the column each one is about, for the messages.
CHECK_COLUMNS = {
    "not_empty": "date",
    "series_complete": "date",
    "series_continues": "date",
    "rows_per_day_in_bounds": "date",
}


def _complete_series(df: pd.DataFrame) -> pd.Series:
    # A series is gap-free when its distinct days fill its first..last span;
    # duplicated days are the uniqueness check's business, not this one's.
    groups = df.groupby(SERIES_COLUMNS, sort=False, dropna=False, observed=True)
    dates = groups["date"]
    span = (dates.transform("max") - dates.transform("min")).dt.days + 1
    return dates.transform("nunique") == span


def _text_column() -> pa.Column:
    # pandera's ``str`` dtype accepts category columns and never looks at the
    # values, so require plain object columns holding only strings.
    return pa.Column(
        object,
        [
            pa.Check(
                lambda s: s.map(lambda v: isinstance(v, str)), name="values_are_str"
            ),
            # An empty id passes the type check and names no series.
            pa.Check(
                lambda s: s.map(lambda v: not isinstance(v, str) or v.strip() != ""),
                name="not_empty_text",
            ),
        ],
        nullable=False,
    )


_FINITE = pa.Check.lt(float("inf"))


def _flag() -> pa.Column:
    return pa.Column("int64", pa.Check.isin([0, 1]), nullable=False)


RAW_COLUMNS: dict[str, pa.Column] = {
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
    # Finite too: an infinite quantity or price passes ge/gt and would turn
    # every lag, rolling mean and price ratio of its series infinite.
    "sales": pa.Column("float64", [pa.Check.ge(0), _FINITE], nullable=False),
    "price": pa.Column("float64", [pa.Check.gt(0), _FINITE], nullable=False),
    "promo": _flag(),
    "holiday": _flag(),
}

RAW_SCHEMA = pa.DataFrameSchema(
    RAW_COLUMNS,
    checks=[
        pa.Check(lambda df: len(df) > 0, name="not_empty"),
        pa.Check(_complete_series, name="series_complete"),
    ],
    unique=KEY_COLUMNS,
    strict=True,
    ordered=True,
    coerce=False,
    name="demand_raw",
)

REQUEST_SCHEMA = pa.DataFrameSchema(
    {name: RAW_COLUMNS[name] for name in REQUEST_COLUMNS},
    strict=True,
    ordered=False,
    coerce=False,
    name="demand_requests",
)


def _feature_column(name: str) -> pa.Column:
    """The expectation for one model input, by what the feature means."""
    calendar = {"dow": (0, 6), "dom": (1, 31), "month": (1, 12), "doy": (1, 366)}
    calendar["weekofyear"] = (1, 53)
    if name in SERIES_COLUMNS:
        return pa.Column("category", nullable=False)
    if name in calendar:
        low, high = calendar[name]
        return pa.Column("int64", pa.Check.in_range(low, high), nullable=False)
    if name == "horizon":
        return pa.Column("int64", pa.Check.ge(1), nullable=False)
    if name in RAW_COLUMNS:
        return RAW_COLUMNS[name]
    if name == "price_ratio":
        return pa.Column("float64", pa.Check.gt(0), nullable=False)
    if name.startswith(("lag_", "rmean_", "rstd_", "same_weekday_")):
        # Sales statistics of the origin state: never negative, never missing
        # (series without 28 days of history are not training examples).
        return pa.Column("float64", pa.Check.ge(0), nullable=False)
    # A feature added later without an expectation here: at least present.
    return pa.Column(nullable=True)


TRAINING_SCHEMA = pa.DataFrameSchema(
    {
        **{name: _feature_column(name) for name in FEATURE_COLUMNS},
        LABEL: RAW_COLUMNS[LABEL],
    },
    checks=pa.Check(lambda df: len(df) > 0, name="not_empty"),
    strict="filter",
    coerce=False,
    name="demand_training_examples",
)


def _daily_failures(
    df: pd.DataFrame,
    new_days: Sequence[pd.Timestamp],
    reference_rows_per_day: float | None,
    min_rows_ratio: float,
    max_rows_ratio: float,
) -> list[dict[str, object]]:
    """Checks of a daily batch against the days before it (pandera's format)."""
    if "date" not in df.columns or not pd.api.types.is_datetime64_dtype(df["date"]):
        return []  # the schema already reports the broken date column
    failures: list[dict[str, object]] = []
    days = df["date"].dt.normalize()
    for day in sorted(pd.Timestamp(d).normalize() for d in new_days):
        rows = int((days == day).sum())
        label = day.strftime("%Y-%m-%d")
        if reference_rows_per_day:
            low = min_rows_ratio * reference_rows_per_day
            high = max_rows_ratio * reference_rows_per_day
            if not low <= rows <= high:
                failures.append(
                    failure_row(
                        "rows_per_day_in_bounds",
                        "date",
                        f"{label}: {rows} rows, previous batch "
                        f"{reference_rows_per_day:g}/day, allowed {low:g}..{high:g}",
                    )
                )
        elif rows == 0:
            failures.append(failure_row("not_empty", "date", f"{label}: no rows"))
        # Every series of the day before must go on: a series that vanishes
        # from a batch would otherwise only show as a gap on a later day.
        before = df.loc[days == day - pd.Timedelta(days=1), SERIES_COLUMNS]
        today = df.loc[days == day, SERIES_COLUMNS]
        gone = before.merge(today, how="left", indicator=True)
        for store, item in (
            gone.loc[gone["_merge"] == "left_only", SERIES_COLUMNS]
            .head(50)
            .itertuples(index=False)
        ):
            failures.append(
                failure_row("series_continues", "date", f"{store}/{item} lacks {label}")
            )
    return failures


def validate_raw(
    df: pd.DataFrame,
    new_days: Sequence[pd.Timestamp] = (),
    reference_rows_per_day: float | None = None,
    min_rows_ratio: float = 0.5,
    max_rows_ratio: float = 2.0,
) -> pd.DataFrame:
    """Check a raw demand table against :data:`RAW_SCHEMA`, all checks at once.

    With ``new_days`` (the days a daily batch adds to the table) it also checks
    that each new day has ``min_rows_ratio..max_rows_ratio`` times the previous
    validated batch's rows per day, has rows at all, and keeps every series of
    the day before.

    Args:
        df: a table claiming to be the canonical raw demand table.
        new_days: days the latest daily batch added; empty for a snapshot.
        reference_rows_per_day: rows per day of the previous validated batch;
            ``None`` skips the volume bounds (the first batch ever).
        min_rows_ratio: lowest allowed multiple of the reference.
        max_rows_ratio: highest allowed multiple of the reference.

    Returns:
        The same table, unchanged, when it is valid.

    Raises:
        DataValidationError: naming every failing column and check in its
            message; ``failure_cases`` holds the full failure table, whose
            ``index`` is the row position (the frame's own index is ignored).
    """
    # pandera's failure report breaks on a non-unique index, which is one of
    # the ways bad data arrives, so validate by position.
    frame = df.reset_index(drop=True)
    parts = []
    try:
        RAW_SCHEMA.validate(frame, lazy=True)
    except SchemaErrors as errors:
        parts.append(errors.failure_cases)
    extra = _daily_failures(
        frame, new_days, reference_rows_per_day, min_rows_ratio, max_rows_ratio
    )
    if extra:
        parts.append(pd.DataFrame(extra))
    if parts:
        failures = pd.concat(parts, ignore_index=True)
        message = describe(
            "raw demand table",
            failures,
            RAW_SCHEMA.name,
            KEY_COLUMNS,
            CHECK_COLUMNS,
            examples={"series_complete": gap_examples(frame, failures)},
        )
        log.debug("%s", message)
        raise DataValidationError(message, failures)
    log.info("raw demand table valid: %d rows", len(df))
    return df


def gap_examples(frame: pd.DataFrame, failures: pd.DataFrame) -> list[str]:
    """Name the first missing day of every series with a gap, in key order."""
    flagged = failures.loc[failures["check"].astype(str) == "series_complete"]
    positions = pd.to_numeric(flagged["index"], errors="coerce").dropna().unique()
    try:
        series = frame.iloc[positions.astype(int)][SERIES_COLUMNS].drop_duplicates()
        rows = frame.merge(series, on=SERIES_COLUMNS)
        out = []
        for (store, item), days in rows.groupby(SERIES_COLUMNS, observed=True)["date"]:
            dates = pd.DatetimeIndex(days.unique())
            full = pd.date_range(dates.min(), dates.max(), freq="D")
            missing = full.difference(dates)
            more = f" and {len(missing) - 1} more day(s)" if len(missing) > 1 else ""
            out.append(f"{store}/{item} lacks {missing[0]:%Y-%m-%d}{more}")
    except (TypeError, ValueError, KeyError, IndexError):
        return []  # the date column itself is broken; the dtype check says so
    return out


def _validate(
    schema: pa.DataFrameSchema, what: str, frame: pd.DataFrame
) -> pd.DataFrame:
    try:
        schema.validate(frame.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        failures = errors.failure_cases.reset_index(drop=True)
        raise DataValidationError(
            describe(what, failures, schema.name, KEY_COLUMNS, CHECK_COLUMNS),
            failures,
        ) from errors
    return frame


def validate_training_examples(examples: pd.DataFrame) -> pd.DataFrame:
    """Check the training examples (``FEATURE_COLUMNS`` and the label).

    Extra columns (``origin``, ``date``) are allowed and ignored.

    Returns:
        The same frame, unchanged, when it is valid.

    Raises:
        DataValidationError: naming every failing column and check.
    """
    return _validate(TRAINING_SCHEMA, "demand training examples", examples)


def validate_requests(frame: pd.DataFrame) -> pd.DataFrame:
    """Check rows to forecast with the raw table's column checks.

    Columns must be exactly ``store_id, item_id`` (non-empty text), ``date``
    (``datetime64[ns]`` at midnight), ``price`` (``float64`` > 0), ``promo``
    and ``holiday`` (``int64`` in {0, 1}), none missing, in any order. Fill
    defaults (last known price, flags 0) before calling. Duplicated keys are
    allowed: a client may ask for the same day under two scenarios.

    Args:
        frame: one row per requested forecast.

    Returns:
        The same frame, unchanged, when it is valid.

    Raises:
        DataValidationError: naming every failing column and check; its
            ``failure_cases`` has ``column``, ``check``, ``failure_case`` and
            ``index`` (the row position in ``frame``).
    """
    return _validate(REQUEST_SCHEMA, "demand request rows", frame)
