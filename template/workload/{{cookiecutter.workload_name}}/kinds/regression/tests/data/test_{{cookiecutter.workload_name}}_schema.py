"""The raw-table contract accepts generated data and names what breaks it."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from loopml.core.errors import DataValidationError

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.schema import validate_raw, validate_request
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import load, load_day
from utils.{{ cookiecutter.workload_name }}_factory import small_config, small_raw


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
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_a_broken_table_fails_naming_the_column(case: str) -> None:
    breaks, column = BREAKAGES[case]
    with pytest.raises(DataValidationError, match=column) as caught:
        validate_raw(breaks(small_raw()))
    assert len(caught.value.failure_cases) > 0


def test_requests_accept_iso_dates_and_refuse_bad_values() -> None:
    rows = small_raw().drop(columns=["order_id", "duration_min"]).head(3)
    rows["date"] = rows["date"].dt.strftime("%Y-%m-%d")
    assert len(validate_request(rows)) == 3
    with pytest.raises(DataValidationError, match="courier_load"):
        validate_request(rows.assign(courier_load=1.5))


def test_a_daily_batch_equals_that_day_in_the_history() -> None:
    config = small_config()
    history = load(config, seed=7)
    day = history["date"].iloc[-1]
    alone = load_day(config, day, seed=7)
    same_day = history[history["date"] == day].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, same_day)
    later = load_day(config, day + pd.Timedelta(days=1), seed=7)
    assert validate_raw(later)["date"].eq(day + pd.Timedelta(days=1)).all()
