"""The raw-table contract accepts generated data and names what breaks it."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from loopml.core.errors import DataValidationError
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import days, load, load_day
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.schema import (
    DATE_RANGE,
    RANGES,
    Row,
    validate_raw,
    validate_request,
)
from utils.{{ cookiecutter.workload_name }}_factory import request_row, small_config, small_raw


def test_generated_data_passes_and_is_reproducible() -> None:
    raw = small_raw(seed=3)
    pd.testing.assert_frame_equal(validate_raw(raw), raw)
    pd.testing.assert_frame_equal(small_raw(seed=3), raw)
    assert not small_raw(seed=4).equals(raw)


def _set(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def breaks(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[df.index[:3], column] = value
        return df

    return breaks


def _drop_days(df: pd.DataFrame) -> pd.DataFrame:
    days = df["date"].drop_duplicates().sort_values()
    return df[~df["date"].isin(days.iloc[10:13])]


BREAKAGES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "negative distance": (_set("distance_km", -1.0), "distance_km"),
    "hour 24": (_set("hour", 24), "hour"),
    "rain flag 2": (_set("rain", 2), "rain"),
    "duplicate order": (_set("order_id", "O0000001"), "order_id"),
    "missing label": (lambda df: df.drop(columns=["duration_min"]), "duration_min"),
    "time of day in date": (
        lambda df: df.assign(date=df["date"] + pd.Timedelta(hours=3)),
        "date",
    ),
    "three days missing": (_drop_days, "days_contiguous"),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_a_broken_table_fails_naming_the_column(case: str) -> None:
    breaks, column = BREAKAGES[case]
    with pytest.raises(DataValidationError, match=column) as caught:
        validate_raw(breaks(small_raw()))
    assert len(caught.value.failure_cases) > 0


def test_a_day_after_a_gap_is_refused_naming_the_missing_days() -> None:
    config = small_config()
    history = load(config, seed=7)
    last = history["date"].max()
    late = load_day(config, last + pd.Timedelta(days=30), seed=7)
    table = pd.concat([history, late], ignore_index=True)
    with pytest.raises(DataValidationError, match="days_contiguous") as caught:
        validate_raw(table, new_days=[last + pd.Timedelta(days=30)])
    assert f"{last + pd.Timedelta(days=1):%Y-%m-%d}" in str(caught.value)


def test_a_daily_batch_far_below_the_usual_volume_is_refused() -> None:
    history = small_raw()
    last = history["date"].max()
    thin = history[(history["date"] < last) | (history.index % 10 == 0)]
    per_day = len(history) / history["date"].nunique()
    with pytest.raises(DataValidationError, match="rows_per_day_in_bounds"):
        validate_raw(thin, new_days=[last], reference_rows_per_day=per_day)
    validate_raw(history, new_days=[last], reference_rows_per_day=per_day)


def test_requests_accept_iso_dates_and_refuse_bad_values() -> None:
    rows = small_raw().drop(columns=["order_id", "duration_min"]).head(3)
    rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
    assert len(validate_request(rows)) == 3
    with pytest.raises(DataValidationError, match="courier_load"):
        validate_request(rows.assign(courier_load=1.5))


@pytest.mark.parametrize(
    "date", ["2300-01-01", "9999-12-31", "0001-01-01", "1677-09-21", "2262-04-12"]
)
def test_a_date_out_of_range_is_refused_naming_the_date(date: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Row(**request_row(date=date))
    assert [e["loc"] for e in refused.value.errors()] == [("date",)]
    rows = pd.DataFrame([request_row(), request_row(date=date)])
    with pytest.raises(DataValidationError, match="date") as caught:
        validate_request(rows)
    failures = caught.value.failure_cases
    assert list(failures["column"]) == ["date"]
    assert list(failures["index"]) == [1]
    assert list(failures["failure_case"]) == [date]


def test_the_first_and_last_day_in_range_are_accepted() -> None:
    low, high = DATE_RANGE
    for day in (low, high):
        Row(**request_row(date=day.isoformat()))
        rows = pd.DataFrame([request_row(date=day.isoformat())])
        assert validate_request(rows)["date"].dt.date.tolist() == [day]


def test_a_date_that_is_no_date_is_refused_naming_the_date() -> None:
    rows = pd.DataFrame([request_row(date="not a day")])
    with pytest.raises(DataValidationError, match="date"):
        validate_request(rows)


@pytest.mark.parametrize("column", sorted(set(RANGES) & set(Row.model_fields)))
def test_the_service_row_and_the_request_schema_agree_on_ranges(column: str) -> None:
    low, high = RANGES[column]
    # The service builds request frames from validated rows: floats stay floats.
    typed = float if Row.model_fields[column].annotation is float else int
    for value, valid in ((low, True), (high, True), (low - 1, False), (high + 1, False)):
        row = request_row(**{column: typed(value)})
        try:
            Row(**row)
            row_ok = True
        except ValidationError:
            row_ok = False
        try:
            validate_request(pd.DataFrame([row]))
            schema_ok = True
        except DataValidationError:
            schema_ok = False
        assert (row_ok, schema_ok) == (valid, valid), (column, value)


def test_a_daily_batch_equals_that_day_in_the_history() -> None:
    config = small_config()
    history = load(config, seed=7)
    day = history["date"].iloc[-1]
    alone = load_day(config, day, seed=7)
    same_day = history[history["date"] == day].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, same_day)
    later = load_day(config, day + pd.Timedelta(days=1), seed=7)
    assert validate_raw(later)["date"].eq(day + pd.Timedelta(days=1)).all()


def test_replayed_days_drift_only_from_the_day_asked() -> None:
    config = small_config()
    first = pd.Timestamp(config.start) + pd.Timedelta(days=config.n_days)
    calm = days(config, first, 20, seed=7)
    drifted = days(config, first, 20, seed=7, drift_from=11)
    before = drifted["date"] < first + pd.Timedelta(days=10)
    pd.testing.assert_frame_equal(drifted[before], calm[before])
    assert drifted.loc[~before, "distance_km"].mean() > 1.3 * calm.loc[
        ~before, "distance_km"
    ].mean()
    validate_raw(drifted)
