"""Forecast metrics (known answers) and the rolling-origin backtest."""

from __future__ import annotations

import math
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from loopml.workloads.demand import data
from loopml.workloads.demand.evaluate import (
    HORIZON_BUCKETS,
    backtest,
    bias,
    evaluate_predictions,
    mase,
    mase_scale,
    wape,
)
from loopml.workloads.demand.features import FEATURE_COLUMNS, build_training_examples
from loopml.workloads.demand.models import SeasonalNaive

Y = [1.0, 2.0, 3.0, 4.0]
YHAT = [2.0, 2.0, 2.0, 2.0]


def test_wape_bias_mase_known_answers() -> None:
    assert wape(Y, YHAT) == pytest.approx(0.4)  # (1 + 0 + 1 + 2) / 10
    assert bias(Y, YHAT) == pytest.approx(-0.2)  # (8 - 10) / 10
    assert mase(Y, YHAT, 2.0) == pytest.approx(0.5)  # mean error 1 / scale 2
    assert mase(Y, YHAT, [1.0, 1.0, 3.0, 3.0]) == pytest.approx(0.5)
    assert wape(Y, Y) == 0.0 and bias(Y, Y) == 0.0 and mase(Y, Y, 1.0) == 0.0
    assert bias([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)


def test_metrics_are_nan_when_undefined() -> None:
    zeros = [0.0, 0.0]
    assert math.isnan(wape(zeros, [1.0, 2.0]))
    assert math.isnan(bias(zeros, [1.0, 2.0]))
    assert math.isnan(mase([1.0], [2.0], 0.0))
    assert math.isnan(mase([], [], 1.0))
    assert math.isnan(wape([], []))
    with pytest.raises(ValueError, match="differ"):
        wape([1.0, 2.0], [1.0])


def test_mase_scale_known_answers() -> None:
    dates = pd.date_range("2024-01-01", periods=21, freq="D")
    weekly = np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 3)
    df = pd.concat(
        [
            pd.DataFrame({"date": dates, "store_id": "S01", "item_id": "I001"}).assign(
                sales=weekly
            ),
            pd.DataFrame({"date": dates, "store_id": "S01", "item_id": "I002"}).assign(
                sales=np.arange(21.0) * 2
            ),
        ]
    )
    scale = mase_scale(df, dates[-1]).set_index("item_id")["scale"]
    assert scale["I001"] == 0.0  # a perfect weekly pattern
    assert scale["I002"] == 14.0  # |2t - 2(t - 7)|
    early = mase_scale(df, dates[5]).set_index("item_id")["scale"]
    assert early.isna().all()  # fewer than 8 days


def test_evaluate_predictions_pools_and_buckets() -> None:
    pred = pd.DataFrame(
        {
            "store_id": "S01",
            "item_id": ["I001"] * 3 + ["I002"],
            "horizon": [1, 8, 20, 3],
            "sales": [10.0, 10.0, 10.0, 10.0],
            "prediction": [12.0, 10.0, 6.0, 10.0],
        }
    )
    scale = pd.DataFrame(
        {"store_id": "S01", "item_id": ["I001", "I002"], "scale": [2.0, 6.0]}
    )
    metrics = evaluate_predictions(pred, scale)
    assert metrics["wape"] == pytest.approx(6 / 40)
    assert metrics["bias"] == pytest.approx(-2 / 40)
    assert metrics["mase"] == pytest.approx(1.5 / 3.0)  # mean|e| / mean(scale)
    assert metrics["wape_h01_07"] == pytest.approx(2 / 20)
    assert metrics["wape_h08_14"] == 0.0
    assert metrics["wape_h15_28"] == pytest.approx(0.4)
    assert metrics["mase_h15_28"] == pytest.approx(2.0)
    assert set(HORIZON_BUCKETS) == {"h01_07", "h08_14", "h15_28"}
    short = evaluate_predictions(pred[pred["horizon"] < 8], scale)
    assert "wape_h15_28" not in short


class _Spy(SeasonalNaive):
    """Seasonal naive that remembers what it was trained on."""

    seen: list[tuple[pd.DataFrame, npt.NDArray[np.float64]]] = []

    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.float64]) -> Self:  # noqa: N803
        self.seen.append((X.reset_index(drop=True), np.asarray(y)))
        return super().fit(X, y)


@pytest.fixture(scope="module")
def world() -> pd.DataFrame:
    return data.generate(n_stores=2, n_items=3, n_days=200, seed=11)


def test_backtest_folds_and_predictions(world: pd.DataFrame) -> None:
    result = backtest(world, SeasonalNaive, horizon=14, n_folds=3, fold_step=14)
    pred = result.predictions
    last = world["date"].max()
    expected = [last - pd.Timedelta(days=14 + 14 * (2 - k)) for k in range(3)]
    assert sorted(pred["origin"].unique()) == expected
    assert list(pred.columns) == [
        "store_id",
        "item_id",
        "origin",
        "date",
        "horizon",
        "sales",
        "prediction",
        "fold",
    ]
    assert len(pred) == 3 * 6 * 14
    assert pred.groupby("fold")["horizon"].agg(["min", "max"]).eq([1, 14]).all().all()
    assert (pred["date"] > pred["origin"]).all() and pred["date"].max() == last
    actual = pred.merge(world, on=["store_id", "item_id", "date"])
    assert (actual["sales_x"] == actual["sales_y"]).all()
    assert set(result.metrics) >= {"wape", "mase", "bias", "wape_h01_07"}
    assert result.metrics["wape"] == pytest.approx(
        wape(pred["sales"], pred["prediction"])
    )


def test_backtest_never_trains_on_future_labels(world: pd.DataFrame) -> None:
    first_origin = world["date"].max() - pd.Timedelta(days=14 + 28)
    _Spy.seen.clear()
    backtest(world, _Spy, horizon=14, n_folds=2, fold_step=28)
    seen_x, seen_y = _Spy.seen[0]
    # Fold 0 trains on exactly the examples whose target date is <= its origin.
    examples = build_training_examples(
        world, horizon=14, last_origin=first_origin - pd.Timedelta(days=1)
    )
    expected = examples[examples["date"] <= first_origin].reset_index(drop=True)
    # The same values; the backtest keeps them in exact narrow dtypes.
    pd.testing.assert_frame_equal(
        seen_x.reset_index(drop=True), expected[FEATURE_COLUMNS], check_dtype=False
    )
    np.testing.assert_array_equal(seen_y, expected["sales"].to_numpy())
    assert len(_Spy.seen[1][1]) > len(seen_y)  # the later fold sees more
    # Whatever happens after the origin, fold 0's training set stays the same.
    future = world.assign(
        sales=world["sales"].where(world["date"] <= first_origin, 999.0)
    )
    _Spy.seen.clear()
    backtest(future, _Spy, horizon=14, n_folds=2, fold_step=28)
    pd.testing.assert_frame_equal(seen_x, _Spy.seen[0][0])
    np.testing.assert_array_equal(seen_y, _Spy.seen[0][1])


def test_backtest_needs_enough_history(world: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="history|training"):
        backtest(world, SeasonalNaive, horizon=28, n_folds=8, fold_step=28)
