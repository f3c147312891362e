"""The monitor's remembered one-day-ahead forecasts equal computing them afresh.

``remembered_one_day_ahead`` forecasts each target day once per model and
rows read; whatever window it is asked for (sliding, jumping, shorter,
longer), on changed rows or for another model, it must answer exactly what
``one_day_ahead`` answers, and forecast only the days it has not seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from loopml.workloads.demand import data
from loopml.workloads.demand import monitoring as demand
from loopml.workloads.demand.batch import series_state
from loopml.workloads.demand.features import FEATURE_COLUMNS, build_training_examples
from loopml.workloads.demand.models import LightGBMForecaster
from loopml.workloads.demand.pyfunc import DemandForecastModel

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, DemandForecastModel]:
    raw = data.generate(n_stores=2, n_items=3, n_days=220, seed=11)
    origin = pd.Timestamp(raw["date"].max()) - pd.Timedelta(days=60)
    examples = build_training_examples(raw[raw["date"] <= origin], horizon=14)
    forecaster = LightGBMForecaster(n_estimators=30, num_leaves=15).fit(
        examples[FEATURE_COLUMNS], examples["sales"].to_numpy()
    )
    return raw, DemandForecastModel(forecaster, series_state(raw, origin), origin, 14)


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Empty memory; the number of target days each computation covered."""
    monkeypatch.setattr(demand, "_BY_TARGET", type(demand._BY_TARGET)())
    days: list[int] = []
    real = demand.one_day_ahead

    def counted(
        model: DemandForecastModel, frame: pd.DataFrame, end: pd.Timestamp, n: int
    ) -> pd.DataFrame:
        days.append(n)
        return real(model, frame, end, n)

    monkeypatch.setattr(demand, "one_day_ahead", counted)
    yield days


def test_sliding_and_jumping_windows_equal_one_day_ahead(
    fitted: tuple[pd.DataFrame, DemandForecastModel], computed: list[int]
) -> None:
    raw, model = fitted
    last = pd.Timestamp(raw["date"].max())
    asks = [
        (last - 20 * DAY, 56),  # a reference window
        (last - 19 * DAY, 56),  # slid by a day: one new day
        (last - 19 * DAY, 56),  # again: nothing new
        (last - 25 * DAY, 7),  # a current window inside it
        (last - 15 * DAY, 7),  # partly after it: 4 new days
        (last, 7),  # after it
        (last - 100 * DAY, 10),  # before everything
    ]
    seen = []
    for end, days in asks:
        expected = demand.one_day_ahead(model, raw, end, days)
        computed.clear()
        got = demand.remembered_one_day_ahead(lambda: model, ("m", "1"), raw, end, days)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert len(got) == days * 6
        seen.append(sum(computed))
    assert seen == [56, 1, 0, 0, 4, 7, 10]


def test_other_rows_or_another_model_are_forecast_again(
    fitted: tuple[pd.DataFrame, DemandForecastModel], computed: list[int]
) -> None:
    raw, model = fitted
    end = pd.Timestamp(raw["date"].max()) - 30 * DAY
    demand.remembered_one_day_ahead(lambda: model, ("m", "1"), raw, end, 20)
    # One sale changed 3 days before the end: the 4 targets that read it.
    changed = raw.copy()
    at = changed.index[changed["date"] == end - 3 * DAY][0]
    changed.loc[at, "sales"] = changed.loc[at, "sales"] + 5
    computed.clear()
    got = demand.remembered_one_day_ahead(lambda: model, ("m", "1"), changed, end, 20)
    assert computed == [4]
    computed.clear()
    expected = demand.one_day_ahead(model, changed, end, 20)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    computed.clear()
    demand.remembered_one_day_ahead(lambda: model, ("m", "2"), raw, end, 20)
    assert computed == [20]
    # Nothing to forecast: the empty frame one_day_ahead gives.
    early = pd.Timestamp(raw["date"].min()) + 5 * DAY
    empty = demand.remembered_one_day_ahead(lambda: model, ("m", "1"), raw, early, 3)
    pd.testing.assert_frame_equal(
        empty, demand.one_day_ahead(model, raw, early, 3), check_exact=True
    )
    assert np.asarray(empty.shape).tolist() == [0, 6]


def test_the_frame_path_too(
    fitted: tuple[pd.DataFrame, DemandForecastModel],
    computed: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model without the fast path: the same forecasts, keys as text."""
    raw, model = fitted
    monkeypatch.setattr(model, "fast", lambda: None)
    last = pd.Timestamp(raw["date"].max())
    for end in (last - 10 * DAY, last - 9 * DAY, last):
        got = demand.remembered_one_day_ahead(lambda: model, ("m", "1"), raw, end, 30)
        expected = demand.one_day_ahead(model, raw, end, 30)
        as_text = {"store_id": str, "item_id": str}
        pd.testing.assert_frame_equal(
            got.astype(as_text), expected.astype(as_text), check_exact=True
        )
