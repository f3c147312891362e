"""Features: shape, no label leakage, stable category codes."""

from __future__ import annotations

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import CHANNELS, LABEL, PLANS
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.features import (
    FEATURE_COLUMNS,
    build_features,
)
from utils.{{ cookiecutter.workload_name }}_factory import request_row, small_raw


def test_one_feature_row_per_input_row_without_the_label() -> None:
    raw = small_raw()
    features = build_features(raw)
    assert list(features.columns) == FEATURE_COLUMNS
    assert len(features) == len(raw)
    assert LABEL not in features.columns
    assert not features.isna().any().any()


@given(plan=st.sampled_from(PLANS), channel=st.sampled_from(CHANNELS))
def test_one_row_codes_its_categories_as_a_whole_table_does(
    plan: str, channel: str
) -> None:
    one = build_features(pd.DataFrame([request_row(plan=plan, channel=channel)]))
    assert list(one["plan"].cat.categories) == PLANS
    assert list(one["channel"].cat.categories) == CHANNELS
    assert one["plan"].cat.codes[0] == PLANS.index(plan)


@given(
    fee=st.floats(0, 1000, allow_nan=False),
    hours=st.floats(0, 744, allow_nan=False),
)
def test_fee_per_hour_is_finite_and_falls_with_use(fee: float, hours: float) -> None:
    rows = pd.DataFrame(
        [
            request_row(monthly_fee=fee, usage_hours=hours),
            request_row(monthly_fee=fee, usage_hours=hours + 10),
        ]
    )
    per_hour = build_features(rows)["fee_per_hour"]
    assert per_hour.notna().all()
    assert per_hour[1] <= per_hour[0]
