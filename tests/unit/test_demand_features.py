"""Features: known answers on a handmade series, and no look-ahead (property)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.workloads.demand import data
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    build_features,
    build_training_examples,
    origin_state,
)

START = pd.Timestamp("2024-01-01")  # a Monday
DAY = pd.Timedelta(days=1)


def _ramp(n_days: int = 40, store: str = "S01", item: str = "I001") -> pd.DataFrame:
    """One series whose sales on day d are d, at a constant price of 2."""
    return pd.DataFrame(
        {
            "date": pd.date_range(START, periods=n_days, freq="D"),
            "store_id": store,
            "item_id": item,
            "sales": np.arange(n_days, dtype=np.float64),
            "price": 2.0,
            "promo": 0,
            "holiday": 0,
        }
    )


def _targets(df: pd.DataFrame, origin: pd.Timestamp, horizon: int) -> pd.DataFrame:
    window = (df["date"] > origin) & (df["date"] <= origin + horizon * DAY)
    return df.loc[window, ["store_id", "item_id", "date", "price", "promo", "holiday"]]


def test_origin_state_known_answers() -> None:
    origin = START + 34 * DAY
    state = origin_state(_ramp(), origin)
    assert len(state) == 1
    row = state.iloc[0]
    assert row["origin"] == origin
    for k in (0, 1, 2, 3, 4, 5, 6, 13, 27):
        assert row[f"lag_{k}"] == 34 - k
        assert row[f"hist_{k}"] == 34 - k
    assert row["rmean_7"] == pytest.approx(np.mean(np.arange(28, 35)))
    assert row["rmean_28"] == pytest.approx(np.mean(np.arange(7, 35)))
    assert row["rstd_28"] == pytest.approx(np.std(np.arange(7, 35), ddof=1))
    assert row["price_mean_28"] == 2.0


def test_build_features_known_answers() -> None:
    df = _ramp()
    origin = START + 34 * DAY  # day 34, a Sunday
    feats = build_features(origin_state(df, origin), _targets(df, origin, 5), origin)
    assert feats["horizon"].tolist() == [1, 2, 3, 4, 5]
    # Most recent same weekday on or before day 34 for day 34 + h.
    assert feats["same_weekday_last"].tolist() == [28, 29, 30, 31, 32]
    assert feats["same_weekday_mean4"].tolist() == [17.5, 18.5, 19.5, 20.5, 21.5]
    assert feats["dow"].tolist() == [0, 1, 2, 3, 4]  # targets Mon..Fri
    first = feats.iloc[0]
    assert (first["dom"], first["month"], first["doy"]) == (5, 2, 36)
    assert first["weekofyear"] == 6
    assert first["price_ratio"] == 1.0 and first["lag_0"] == 34


def test_same_weekday_for_whole_weeks_and_long_horizons() -> None:
    df = _ramp(n_days=80)
    origin = START + 34 * DAY
    targets = _targets(df, origin, 30)
    feats = build_features(origin_state(df, origin), targets, origin)
    by_h = feats.set_index("horizon")
    # h = 7, 14, 28 land on the origin's weekday: the origin itself.
    assert by_h.loc[[7, 14, 28], "same_weekday_last"].tolist() == [34, 34, 34]
    assert by_h.loc[7, "same_weekday_mean4"] == np.mean([34, 27, 20, 13])
    assert by_h.loc[8, "same_weekday_last"] == 28  # same as h = 1
    assert by_h.loc[30, "same_weekday_last"] == 29  # day 64 - 5 weeks


def test_build_features_keeps_request_rows_and_order() -> None:
    df = pd.concat([_ramp(), _ramp(item="I002")], ignore_index=True)
    origin = START + 34 * DAY
    state = origin_state(df, origin)
    request = pd.DataFrame(
        {
            "store_id": ["S01", "S09", "S01"],
            "item_id": ["I002", "I001", "I001"],
            "date": [origin + 3 * DAY, origin + DAY, origin + DAY],
            "price": [4.0, 1.0, 2.0],
            "promo": [1, 0, 0],
            "holiday": [0, 0, 1],
        }
    )
    feats = build_features(state, request, origin)
    assert feats["item_id"].astype(str).tolist() == ["I002", "I001", "I001"]
    assert feats["horizon"].tolist() == [3, 1, 1]
    assert feats["price_ratio"].iloc[0] == 2.0
    assert np.isnan(feats["lag_0"].iloc[1])  # unknown series: no state
    assert isinstance(feats["store_id"].dtype, pd.CategoricalDtype)
    with pytest.raises(ValueError, match="after"):
        build_features(state, request.assign(date=origin), origin)
    with pytest.raises(ValueError, match="another origin"):
        build_features(state, request, origin + DAY)


def test_origin_state_drops_short_series() -> None:
    df = pd.concat([_ramp(), _ramp(n_days=20, item="I002")], ignore_index=True)
    assert len(origin_state(df, START + 27 * DAY)) == 1
    assert len(origin_state(df, START + 26 * DAY)) == 0


def test_training_examples_grid_and_labels() -> None:
    df = data.generate(n_stores=2, n_items=2, n_days=100, seed=1)
    ex = build_training_examples(df, horizon=14, origin_step=7)
    origins = sorted(ex["origin"].unique())
    assert origins[0] == START + 28 * DAY
    assert all(b - a == 7 * DAY for a, b in zip(origins, origins[1:], strict=False))
    assert origins[-1] <= df["date"].max() - 14 * DAY
    assert list(ex.columns) == [*FEATURE_COLUMNS, "sales", "origin", "date"]
    assert (
        ex.groupby(["origin", "store_id", "item_id"], observed=True).size().eq(14).all()
    )
    labels = ex.merge(df, on=["store_id", "item_id", "date"], suffixes=("", "_raw"))
    assert len(labels) == len(ex)
    assert (labels["sales"] == labels["sales_raw"]).all()
    assert (ex["date"] - ex["origin"]).dt.days.eq(ex["horizon"]).all()
    assert not ex[FEATURE_COLUMNS].isna().any().any()
    late = build_training_examples(df, horizon=14, last_origin=df["date"].max())
    assert late["date"].max() == df["date"].max()


def test_training_examples_need_history() -> None:
    with pytest.raises(ValueError, match="history"):
        build_training_examples(_ramp(n_days=40), horizon=14)


BASE = data.generate(n_stores=1, n_items=3, n_days=70, seed=5)
SERIES = BASE[["store_id", "item_id"]].drop_duplicates().to_records(index=False)
GRID = [28, 35, 42, 49, 56]  # training origins: first date + 28 + 7k, h <= 7


def _training_rows(df: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    ex = build_training_examples(df, horizon=7, origin_step=7)
    return ex.loc[ex["origin"] == origin, FEATURE_COLUMNS].reset_index(drop=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    origin_day=st.one_of(st.sampled_from(GRID), st.integers(27, 62)),
    shift=st.floats(0, 100, allow_nan=False),
    changes=st.lists(
        st.tuples(
            st.integers(0, len(SERIES) - 1),
            st.integers(1, 10),
            st.floats(0, 1e4, allow_nan=False),
        ),
        max_size=5,
    ),
)
def test_no_look_ahead(
    origin_day: int, shift: float, changes: list[tuple[int, int, float]]
) -> None:
    """Changing sales after the origin never changes a feature of that origin.

    Every future value moves by ``shift`` (so any leak, however far ahead, shows
    up) and a few near-future values are overwritten outright.
    """
    origin = START + origin_day * DAY
    changed = BASE.copy()
    changed.loc[changed["date"] > origin, "sales"] += shift
    for series, days_after, value in changes:
        store, item = SERIES[series]
        row = (
            (changed["store_id"] == store)
            & (changed["item_id"] == item)
            & (changed["date"] == origin + days_after * DAY)
        )
        changed.loc[row, "sales"] = value
    targets = _targets(BASE, origin, 7)
    before = build_features(origin_state(BASE, origin), targets, origin)
    after = build_features(origin_state(changed, origin), targets, origin)
    pd.testing.assert_frame_equal(before[FEATURE_COLUMNS], after[FEATURE_COLUMNS])
    if origin_day in GRID:
        expected = _training_rows(BASE, origin)
        assert len(expected) == len(SERIES) * 7
        pd.testing.assert_frame_equal(expected, _training_rows(changed, origin))
