"""The training-examples and request schemas at the other two boundaries."""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.core.errors import DataValidationError
from loopml.workloads.demand import data
from loopml.workloads.demand.features import FEATURE_COLUMNS, build_training_examples
from loopml.workloads.demand.schema import (
    REQUEST_COLUMNS,
    TRAINING_SCHEMA,
    validate_requests,
    validate_training_examples,
)

RAW = data.generate(n_stores=2, n_items=2, n_days=90, seed=4)


@pytest.fixture(scope="module")
def examples() -> pd.DataFrame:
    return build_training_examples(RAW, horizon=7)


@pytest.fixture()
def requests() -> pd.DataFrame:
    return RAW[REQUEST_COLUMNS].tail(6).reset_index(drop=True)


def test_schema_covers_every_feature_and_the_label() -> None:
    assert set(TRAINING_SCHEMA.columns) == {*FEATURE_COLUMNS, "sales"}


def test_real_training_examples_pass(examples: pd.DataFrame) -> None:
    assert validate_training_examples(examples) is examples


@pytest.mark.parametrize(
    ("column", "corrupt", "check"),
    [
        ("sales", lambda f: f.assign(sales=-f["sales"] - 1), "greater_than_or_equal"),
        ("lag_0", lambda f: f.assign(lag_0=float("nan")), "not_nullable"),
        ("dow", lambda f: f.assign(dow=7), "in_range"),
        ("horizon", lambda f: f.assign(horizon=0), "greater_than_or_equal"),
        ("store_id", lambda f: f.assign(store_id=f["store_id"].astype(str)), "dtype"),
        ("price_ratio", lambda f: f.drop(columns="price_ratio"), "column_in_dataframe"),
    ],
)
def test_broken_training_examples_are_named(
    examples: pd.DataFrame, column: str, corrupt: object, check: str
) -> None:
    assert callable(corrupt)
    with pytest.raises(DataValidationError) as caught:
        validate_training_examples(corrupt(examples.copy()))
    assert f"column {column!r}" in str(caught.value) and check in str(caught.value)


def test_valid_requests_pass_in_any_column_order(requests: pd.DataFrame) -> None:
    assert validate_requests(requests) is requests
    shuffled = requests[list(reversed(REQUEST_COLUMNS))]
    assert validate_requests(shuffled) is shuffled
    twice = pd.concat([requests, requests.assign(promo=1)], ignore_index=True)
    validate_requests(twice)  # the same day under two scenarios is fine


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("price", 0.0, "greater_than(0)"),
        ("price", float("nan"), "not_nullable"),
        ("promo", 2, "isin"),
        ("holiday", -1, "isin"),
        ("store_id", None, "not_nullable"),
        ("item_id", 5, "values_are_str"),
        ("date", pd.Timestamp("2024-03-01 12:00"), "is_midnight"),
    ],
)
def test_bad_requests_name_column_and_check(
    requests: pd.DataFrame, column: str, value: object, check: str
) -> None:
    bad = requests.copy()
    if column in ("store_id", "item_id"):
        bad[column] = bad[column].astype(object)
    bad.loc[2, column] = value
    with pytest.raises(DataValidationError) as caught:
        validate_requests(bad)
    assert f"column {column!r}" in str(caught.value) and check in str(caught.value)
    failures = caught.value.failure_cases
    assert 2 in pd.to_numeric(failures["index"], errors="coerce").tolist()


def test_requests_need_exactly_the_request_columns(requests: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="column 'price'"):
        validate_requests(requests.drop(columns="price"))
    with pytest.raises(DataValidationError, match="column 'sales'"):
        validate_requests(requests.assign(sales=1.0))
