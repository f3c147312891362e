"""Property-based corruptions of a valid table: every one is caught and named.

Each test breaks a valid generated frame in one way, anywhere hypothesis
chooses, and requires a ``DataValidationError`` whose message names the
column and the check. Column order is part of the raw contract (loaders emit
the canonical order; ``ordered=True``), so a shuffled order is an error too.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.core.errors import DataValidationError
from loopml.workloads.demand import data
from loopml.workloads.demand.schema import validate_raw

VALID = data.generate(n_stores=2, n_items=3, n_days=30, seed=11)
COLUMNS = list(VALID.columns)
NUMERIC = ["sales", "price", "promo", "holiday"]
KEYS = ["store_id", "item_id", "date"]
FAST = settings(max_examples=25, deadline=None)
rows = st.integers(0, len(VALID) - 1)


def _message(frame: pd.DataFrame, **daily: object) -> str:
    with pytest.raises(DataValidationError) as caught:
        validate_raw(frame, **daily)  # type: ignore[arg-type]
    assert len(caught.value.failure_cases) > 0
    return str(caught.value)


def test_the_valid_frame_passes() -> None:
    assert validate_raw(VALID) is VALID


@FAST
@given(row=rows, column=st.sampled_from(NUMERIC), text=st.text(min_size=1))
def test_string_in_numeric_column(row: int, column: str, text: str) -> None:
    bad = VALID.copy()
    bad[column] = bad[column].astype(object)
    bad.loc[row, column] = text
    message = _message(bad)
    assert f"column {column!r}" in message and "dtype(" in message


@FAST
@given(
    case=st.sampled_from(
        [
            ("sales", "int64"),
            ("price", "float32"),
            ("promo", "int32"),
            ("holiday", "float64"),
            ("date", "datetime64[s]"),
            ("store_id", "category"),
            ("item_id", "category"),
        ]
    )
)
def test_wrong_dtype(case: tuple[str, str]) -> None:
    column, dtype = case
    message = _message(VALID.astype({column: dtype}))
    assert f"column {column!r}" in message
    assert "dtype(" in message or "unit_is_ns" in message or "values_are_str" in message


@FAST
@given(row=rows, column=st.sampled_from(COLUMNS))
def test_null_anywhere(row: int, column: str) -> None:
    bad = VALID.copy()
    bad.loc[row, column] = None
    message = _message(bad)
    assert f"column {column!r}" in message and "not_nullable" in message


@FAST
@given(
    row=rows, value=st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False)
)
def test_negative_quantity(row: int, value: float) -> None:
    bad = VALID.copy()
    bad.loc[row, "sales"] = value
    message = _message(bad)
    assert "column 'sales'" in message and "greater_than_or_equal_to(0)" in message


@FAST
@given(row=rows, column=st.sampled_from(["sales", "price"]))
def test_infinite_quantity_or_price(row: int, column: str) -> None:
    # inf passes ge(0) / gt(0); it would make every lag of its series inf.
    bad = VALID.copy()
    bad.loc[row, column] = float("inf")
    message = _message(bad)
    assert f"column {column!r}" in message and "less_than(inf)" in message


@FAST
@given(
    row=rows,
    column=st.sampled_from(["store_id", "item_id"]),
    blank=st.sampled_from(["", " ", "\t"]),
)
def test_empty_id(row: int, column: str, blank: str) -> None:
    bad = VALID.copy()
    bad.loc[row, column] = blank
    message = _message(bad)
    assert f"column {column!r}" in message and "not_empty_text" in message


@FAST
@given(row=rows, sales=st.floats(0, 1e6))
def test_duplicated_key(row: int, sales: float) -> None:
    # The same store, item and day twice, even with another quantity.
    twin = VALID.iloc[[row]].assign(sales=sales)
    message = _message(pd.concat([VALID, twin], ignore_index=True))
    assert "key columns ['store_id', 'item_id', 'date']" in message
    assert "multiple_fields_uniqueness" in message


@FAST
@given(order=st.permutations(COLUMNS).filter(lambda o: o != COLUMNS))
def test_shuffled_column_order(order: list[str]) -> None:
    message = _message(VALID[order])
    moved = [c for c, want in zip(order, COLUMNS, strict=True) if c != want]
    assert "column_ordered" in message
    assert any(f"column {c!r}" in message for c in moved)


@FAST
@given(row=rows)
def test_missing_day_inside_a_series(row: int) -> None:
    series = VALID.loc[row, ["store_id", "item_id"]].tolist()
    day = VALID.loc[row, "date"]
    dates = VALID.loc[
        (VALID["store_id"] == series[0]) & (VALID["item_id"] == series[1]), "date"
    ]
    if day in (dates.min(), dates.max()):
        day = dates.min() + pd.Timedelta(days=1)  # only an inside day is a gap
    gone = (
        (VALID["store_id"] == series[0])
        & (VALID["item_id"] == series[1])
        & (VALID["date"] == day)
    )
    message = _message(VALID[~gone])
    assert "column 'date'" in message and "series_complete" in message
    assert f"{series[0]}/{series[1]} lacks {day:%Y-%m-%d}" in message


def test_empty_table() -> None:
    message = _message(VALID.iloc[:0])
    assert "column 'date'" in message and "not_empty" in message


@FAST
@given(keep=st.integers(0, 5), ratio=st.sampled_from([0.25, 3.0]))
def test_daily_batch_outside_the_row_bounds(keep: int, ratio: float) -> None:
    # The last day is the new batch; compare it with a previous rows/day so
    # far off that the day is out of the 50%..200% bounds.
    last = VALID["date"].max()
    day = VALID[VALID["date"] == last].head(keep)
    frame = pd.concat([VALID[VALID["date"] < last], day], ignore_index=True)
    reference = max(keep, 1) / ratio
    message = _message(frame, new_days=[last], reference_rows_per_day=reference)
    assert "column 'date'" in message
    assert "rows_per_day_in_bounds" in message or "series_continues" in message
    assert f"{last:%Y-%m-%d}" in message


def test_empty_daily_batch_without_history_of_volume() -> None:
    last = VALID["date"].max()
    message = _message(VALID[VALID["date"] < last], new_days=[last])
    assert "column 'date'" in message and "not_empty" in message


@FAST
@given(low=st.integers(0, 10), length=st.integers(1, 19))
def test_any_run_of_whole_days_is_valid(low: int, length: int) -> None:
    # No false alarms: a contiguous slice of days is a valid table.
    days = VALID["date"].drop_duplicates().sort_values().iloc[low : low + length]
    frame = VALID[VALID["date"].isin(days)].reset_index(drop=True)
    validate_raw(frame, new_days=[days.iloc[-1]], reference_rows_per_day=6)
