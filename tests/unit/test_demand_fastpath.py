"""The pandas-free demand path equals the training feature builder, row for row.

12,000 random request rows over every horizon 1..28: known series, unknown
series (a new item, a new store), missing prices, promotions and holidays,
each forecast from the state bundled with the model or from a later online
state (a different origin per row). The float matrix of
``fastpath.FastForecaster`` must equal ``build_features`` after the
forecaster's own category mapping, and the forecasts must equal the pandas
path's.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from loopml.workloads.demand import data, fastpath
from loopml.workloads.demand.batch import series_state
from loopml.workloads.demand.fastpath import (
    _LAST_PRICE,
    STATE_NUMBERS,
    FastForecaster,
    SeriesStates,
    day_number,
    timestamp_day,
)
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    build_features,
    build_training_examples,
)
from loopml.workloads.demand.models import LightGBMForecaster, SeasonalNaive
from loopml.workloads.demand.pyfunc import DemandForecastModel

HORIZON = 28
N_ROWS = 12_000


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp]:
    raw = data.generate(n_stores=3, n_items=6, n_days=260, seed=7)
    origin = pd.Timestamp(raw["date"].max()) - pd.Timedelta(days=40)
    train = raw[raw["date"] <= origin]
    examples = build_training_examples(train, horizon=HORIZON)
    forecaster = LightGBMForecaster(n_estimators=60, num_leaves=15).fit(
        examples[FEATURE_COLUMNS], examples["sales"].to_numpy()
    )
    model = DemandForecastModel(forecaster, series_state(raw, origin), origin, HORIZON)
    return raw, model, origin


def _random_rows(
    raw: pd.DataFrame, origins: list[pd.Timestamp], seed: int
) -> pd.DataFrame:
    """Random rows; ``origins[i % len]`` is only used to pick the dates."""
    rng = np.random.default_rng(seed)
    stores = [*sorted(raw["store_id"].unique()), "S99"]
    items = [*sorted(raw["item_id"].unique()), "I999"]
    horizons = np.arange(N_ROWS) % HORIZON + 1  # every horizon, ~430 times
    rng.shuffle(horizons)
    prices = rng.uniform(0.5, 20.0, N_ROWS).round(2)
    prices[rng.random(N_ROWS) < 0.3] = np.nan  # the series' last price
    return pd.DataFrame(
        {
            "store_id": rng.choice(stores, N_ROWS, p=[0.3, 0.3, 0.3, 0.1]),
            "item_id": rng.choice(items, N_ROWS),
            "date": [
                origins[i % len(origins)] + pd.Timedelta(days=int(h))
                for i, h in enumerate(horizons)
            ],
            "price": prices,
            "promo": rng.integers(0, 2, N_ROWS),
            "holiday": rng.integers(0, 2, N_ROWS),
        }
    )


def _fast_matrix(
    forecaster: FastForecaster,
    rows: pd.DataFrame,
    state_rows: np.ndarray,
    origins: list[int],
) -> np.ndarray:
    """The fast path's matrix of request rows, one state row and origin each."""
    prices = rows["price"].to_numpy(dtype=np.float64).tolist()
    days = [day_number(d.date()) for d in rows["date"]]
    series = [
        forecaster.series(store, item, state_rows[i])
        for i, (store, item) in enumerate(
            zip(rows["store_id"], rows["item_id"], strict=True)
        )
    ]
    return forecaster.inputs(
        series,
        [day - origin for day, origin in zip(days, origins, strict=True)],
        days,
        prices,
        rows["promo"].astype(float).tolist(),
        rows["holiday"].astype(float).tolist(),
    )


def _lightgbm_inputs(model: DemandForecastModel, features: pd.DataFrame) -> np.ndarray:
    """What LightGBM receives from the pandas path: categories as codes."""
    frame = model.forecaster._frame(features[FEATURE_COLUMNS])  # type: ignore[attr-defined]
    for column in ("store_id", "item_id"):
        codes = frame[column].cat.codes.to_numpy().astype(np.float64)
        frame[column] = np.where(codes < 0, np.nan, codes)
    return frame.to_numpy(dtype=np.float64)


def _pandas_forecast(model: DemandForecastModel, features: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.forecaster.predict(features[FEATURE_COLUMNS]))


def test_bundled_state_matrix_and_forecasts_equal_build_features(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    raw, model, origin = fitted
    rows = _random_rows(raw, [origin], seed=1)
    fast = model.fast()
    assert fast is not None
    forecaster, states, origin_day = fast
    assert origin_day == day_number(origin.date())

    frame = model.requests_frame(rows)
    features = build_features(model.state, frame, origin)
    keys = list(zip(rows["store_id"], rows["item_id"], strict=True))
    matrix = _fast_matrix(forecaster, rows, states.rows(keys), [origin_day] * N_ROWS)
    order = [forecaster.names.index(c) for c in FEATURE_COLUMNS]
    expected = _lightgbm_inputs(model, features)
    np.testing.assert_array_equal(matrix[:, order], expected)
    # Not vacuous: unknown series, unseen categories and NaN states occur.
    assert np.isnan(matrix[:, forecaster.col["store_id"]]).any()
    assert np.isnan(matrix[:, forecaster.col["lag_0"]]).any()
    assert (~np.isnan(matrix[:, forecaster.col["lag_0"]])).mean() > 0.5

    # The pyfunc's forecast (fast, its trees compiled) equals the forecaster's
    # pandas predict to the last bits (the compiled trees sum in another
    # order); LightGBM's own predictor on the matrix equals it exactly.
    values = model.forecast(rows)
    pandas = _pandas_forecast(model, features)
    np.testing.assert_allclose(values, pandas, rtol=1e-12, atol=1e-12)
    assert forecaster._predictor.compiled
    plain = FastForecaster(model.forecaster, compiled=False)
    assert not plain._predictor.compiled
    np.testing.assert_array_equal(plain.predict(matrix), pandas)
    assert values.shape == (N_ROWS,) and (values > 0).any()


def test_online_states_of_other_origins_equal_build_features(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    """Rows forecast from later states (as read online), one origin per row."""
    raw, model, origin = fitted
    fast = model.fast()
    assert fast is not None
    forecaster, bundled, _ = fast
    later = [origin + pd.Timedelta(days=d) for d in (0, 3, 11)]
    rows = _random_rows(raw, later, seed=2)
    row_origin = [later[i % len(later)] for i in range(N_ROWS)]
    states = {o: series_state(raw, o) for o in later}
    # Feast hands back the state as float64 per feature; go through the same.
    online = {
        o: SeriesStates.of(s[["store_id", "item_id", *STATE_NUMBERS]])
        for o, s in states.items()
    }
    keys = list(zip(rows["store_id"], rows["item_id"], strict=True))
    state_rows = np.empty((N_ROWS, len(STATE_NUMBERS)))
    for o in later:
        at = np.flatnonzero([r == o for r in row_origin])
        state_rows[at] = online[o].rows([keys[i] for i in at])
    origin_days = [timestamp_day(o) for o in row_origin]
    matrix = _fast_matrix(forecaster, rows, state_rows, origin_days)
    order = [forecaster.names.index(c) for c in FEATURE_COLUMNS]
    values = forecaster.predict(matrix)
    for o in later:
        at = np.flatnonzero([r == o for r in row_origin])
        part = rows.iloc[at].reset_index(drop=True)
        prices = {
            (s, i): p
            for s, i, p in states[o][["store_id", "item_id", "last_price"]].itertuples(
                index=False
            )
        }
        features = build_features(states[o], model.requests_frame(part, prices), o)
        np.testing.assert_array_equal(
            matrix[at][:, order], _lightgbm_inputs(model, features)
        )
        np.testing.assert_allclose(
            values[at], _pandas_forecast(model, features), rtol=1e-12, atol=1e-12
        )
    assert len(bundled.index) == len(model.state)


def test_fast_arrays_are_not_pickled_and_other_models_keep_pandas(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    raw, model, origin = fitted
    assert model.fast() is not None
    copy = pickle.loads(pickle.dumps(model))
    assert "_fast" not in copy.__dict__
    rows = _random_rows(raw, [origin], seed=3).head(200)
    np.testing.assert_array_equal(copy.forecast(rows), model.forecast(rows))

    naive = DemandForecastModel(SeasonalNaive(), model.state, origin, HORIZON)
    examples = build_training_examples(raw[raw["date"] <= origin], horizon=HORIZON)
    naive.forecaster.fit(examples[FEATURE_COLUMNS], examples["sales"].to_numpy())
    assert naive.fast() is None
    assert naive.forecast(rows).shape == (200,)


def test_monitor_one_day_ahead_equals_the_frame_path(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The monitor's daily replay of the champion: fast path = frame path."""
    from loopml.workloads.demand.monitoring import one_day_ahead

    raw, model, _ = fitted
    # A day with a missing price: the model fills it with its last known one.
    raw = raw.copy()
    raw.loc[raw.index[-5], "price"] = np.nan
    end = pd.Timestamp(raw["date"].max())
    fast = one_day_ahead(model, raw, end, days=40)
    monkeypatch.setattr(model, "fast", lambda: None)
    frames = one_day_ahead(model, raw, end, days=40)
    assert len(fast) == 40 * 18
    # The frame path's keys are categoricals (build_features makes them).
    frames = frames.astype({"store_id": str, "item_id": str})
    # The fast path's trees are compiled: equal to the last bits of a float64.
    pd.testing.assert_frame_equal(
        fast, frames, check_exact=False, rtol=1e-12, atol=1e-12
    )


def test_origin_states_equal_origin_state_day_by_day(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    """One matrix for a span of origins gives each day's ``origin_state``."""
    from loopml.workloads.demand.features import origin_state, origin_states

    raw = fitted[0]
    # A series that starts late and one with a gap: dropped where short.
    raw = raw.drop(raw.index[(raw["item_id"] == "I002") & (raw["date"] < "2024-08-01")])
    raw = raw.drop(
        raw.index[(raw["item_id"] == "I003") & (raw["date"] == "2024-08-20")]
    )
    end = pd.Timestamp(raw["date"].max())
    first = end - pd.Timedelta(days=120)
    seen = 0
    for origin, state in origin_states(raw, first, end):
        pd.testing.assert_frame_equal(
            state, origin_state(raw, origin), check_exact=True
        )
        seen += 1
    assert seen == 121


def _first_series(
    model: DemandForecastModel,
) -> tuple[FastForecaster, SeriesStates, tuple[str, str]]:
    """The model's fast forecaster, its bundled states and their first key."""
    fast = model.fast()
    assert fast is not None
    forecaster, states, _ = fast
    return forecaster, states, next(iter(states.index))


def test_series_are_kept_per_state_not_per_name(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    forecaster, states, key = _first_series(fitted[1])
    state = states.row(key).copy()
    first = forecaster.series(*key, state)
    assert forecaster.series(*key, state.copy()) is first  # kept
    moved = state.copy()
    moved[_LAST_PRICE] = state[_LAST_PRICE] + 1.0  # a new day's state
    again = forecaster.series(*key, moved)
    assert again is not first and again[4] == first[4] + 1.0
    other = forecaster.series("no such store", key[1], state)
    assert math.isnan(other[0]) and other[2:] == first[2:]


def test_a_state_changed_in_place_is_never_answered_from_memory(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    """Series are remembered by the state object only when it is read-only."""
    forecaster, states, key = _first_series(fitted[1])
    view = states.row(key)
    assert view is states.row(key) and not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[_LAST_PRICE] = 1.0
    first = forecaster.series(*key, view)
    assert forecaster.series(*key, view) is first
    writable = view.copy()
    forecaster.series(*key, writable)
    writable[_LAST_PRICE] = view[_LAST_PRICE] + 5.0  # changed in place
    assert forecaster.series(*key, writable)[4] == first[4] + 5.0


def test_inputs_refuse_a_target_day_not_after_its_origin(
    fitted: tuple[pd.DataFrame, DemandForecastModel, pd.Timestamp],
) -> None:
    forecaster, states, key = _first_series(fitted[1])
    one = forecaster.series(*key, states.row(key))
    day = day_number(fitted[2].date()) + 1

    def inputs(horizons: object) -> np.ndarray:
        n = 3
        return forecaster.inputs(
            [one] * n, horizons, [day] * n, [None] * n, [0] * n, [0] * n
        )

    as_list = inputs([1, 2, 3])
    assert as_list.shape == (3, forecaster.width)
    np.testing.assert_array_equal(inputs(np.array([1, 2, 3])), as_list)
    for bad in ([1, 0, 2], np.array([3, 2, -1])):
        with pytest.raises(ValueError, match="after its forecast origin"):
            inputs(bad)


@pytest.mark.parametrize(
    "values",
    [
        [1, 2.5, math.nan, math.inf, -math.inf, -0.0, True, 2**60 + 1, 7],
        [np.float64(3.25), np.int64(-4), 1e-310, 1.7976931348623157e308],
        [None, 1.0, None],  # struct refuses None: numpy's way, NaN
        [],
    ],
)
def test_floats_is_numpys_float_array_to_the_bit(values: list[float]) -> None:
    got = fastpath.floats(values)
    want = np.array(values, dtype=np.float64)
    assert got.dtype == np.float64 and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert got.flags.writeable
