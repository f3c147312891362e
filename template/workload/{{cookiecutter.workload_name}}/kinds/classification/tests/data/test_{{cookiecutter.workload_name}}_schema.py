"""The raw-table contract accepts generated data and names what breaks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import pandas as pd
import pytest
from loopml.core.errors import DataValidationError
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import (
    CHANNELS,
    PLANS,
    days,
    load,
    load_day,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.schema import (
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
    "negative usage": (_set("usage_hours", -1.0), "usage_hours"),
    "tenure 0": (_set("tenure_months", 0), "tenure_months"),
    "unknown plan": (_set("plan", "gold"), "plan"),
    "label 2": (_set("churned", 2), "churned"),
    "duplicate customer": (_set("customer_id", "C0000001"), "customer_id"),
    "missing label": (lambda df: df.drop(columns=["churned"]), "churned"),
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


def test_requests_keep_the_inputs_and_refuse_bad_values() -> None:
    rows = small_raw().drop(columns=["churned"]).head(3)
    checked = validate_request(rows)
    assert len(checked) == 3 and "customer_id" not in checked.columns
    with pytest.raises(DataValidationError, match="channel"):
        validate_request(rows.assign(channel="fax"))


def test_the_service_row_knows_the_same_plans_and_channels() -> None:
    assert get_args(Row.model_fields["plan"].annotation) == tuple(PLANS)
    assert get_args(Row.model_fields["channel"].annotation) == tuple(CHANNELS)


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
    assert drifted.loc[~before, "usage_hours"].mean() < 0.7 * calm.loc[
        ~before, "usage_hours"
    ].mean()
    assert drifted.loc[~before, "churned"].mean() > calm.loc[~before, "churned"].mean()
    validate_raw(drifted)
