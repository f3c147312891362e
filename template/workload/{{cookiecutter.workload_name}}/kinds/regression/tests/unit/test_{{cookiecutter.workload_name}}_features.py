"""Features: shape, no label leakage, and the rush-hour flag."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import LABEL, PEAK_HOURS
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import (
    FEATURE_COLUMNS,
    build_features,
)
from utils.{{ cookiecutter.workload_name }}_factory import small_raw


def test_one_feature_row_per_input_row_without_the_label() -> None:
    raw = small_raw()
    features = build_features(raw)
    assert list(features.columns) == FEATURE_COLUMNS
    assert len(features) == len(raw)
    assert LABEL not in features.columns
    assert not features.isna().any().any()


@given(
    hour=st.integers(0, 23),
    day=st.dates(
        min_value=pd.Timestamp("2000-01-01").date(),
        max_value=pd.Timestamp("2100-12-31").date(),
    ),
)
def test_peak_flag_and_weekday_follow_the_request(hour: int, day: object) -> None:
    row = pd.DataFrame(
        {
            "date": [pd.Timestamp(str(day))],
            "distance_km": [3.0],
            "items": [2],
            "hour": [hour],
            "rain": [0],
            "courier_load": [0.5],
        }
    )
    features = build_features(row).iloc[0]
    assert features["is_peak"] == int(hour in PEAK_HOURS)
    assert features["weekday"] == pd.Timestamp(str(day)).dayofweek
