"""Forecasters: the fit/predict contract, determinism, and beating the baseline."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from loopml.core.errors import NotFittedError
from loopml.workloads.demand import data
from loopml.workloads.demand.evaluate import backtest
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    KEYS,
    TARGET_COLUMNS,
    build_features,
    build_training_examples,
    compact,
    origin_state,
)
from loopml.workloads.demand.models import (
    MODELS,
    ForecastModel,
    LightGBMForecaster,
    SeasonalNaive,
)

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def examples() -> pd.DataFrame:
    df = data.generate(n_stores=2, n_items=3, n_days=200, seed=3)
    return build_training_examples(df, horizon=14)


def _small_lgbm(**params: object) -> LightGBMForecaster:
    return LightGBMForecaster(n_estimators=50, **params)  # type: ignore[arg-type]


def test_registry_and_protocol() -> None:
    assert list(MODELS) == [
        "seasonal_naive",
        "moving_average",
        "last_value",
        "lightgbm_forecaster",
    ]
    assert MODELS["seasonal_naive"] is SeasonalNaive
    assert MODELS["lightgbm_forecaster"] is LightGBMForecaster
    for cls in MODELS.values():
        assert isinstance(cls(), ForecastModel)
        assert isinstance(cls().get_params(), dict)  # type: ignore[attr-defined]


def test_simple_baselines_read_the_origin_features() -> None:
    from loopml.workloads.demand.models import LastValue, MovingAverage

    x = pd.DataFrame({"rmean_28": [2.0, 3.0], "rmean_7": [1.0, 4.0], "lag_0": [5.0, 0]})
    y = np.zeros(2)
    assert MovingAverage().fit(x, y).predict(x).tolist() == [2.0, 3.0]
    assert MovingAverage(window=7).fit(x, y).predict(x).tolist() == [1.0, 4.0]
    assert LastValue().fit(x, y).predict(x).tolist() == [5.0, 0.0]
    with pytest.raises(ValueError, match="window 5 is not supported"):
        MovingAverage(window=5).fit(x, y)
    with pytest.raises(ValueError, match="lacks the column 'lag_1'"):
        LastValue(lag=1).fit(x, y)


@pytest.mark.parametrize("model", [SeasonalNaive(), LightGBMForecaster()])
def test_predict_before_fit_raises(
    model: ForecastModel, examples: pd.DataFrame
) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(examples[FEATURE_COLUMNS])


def test_init_only_stores_params() -> None:
    model = LightGBMForecaster(num_leaves=7, seed=1)
    assert model.get_params()["num_leaves"] == 7
    assert not [name for name in vars(model) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        model.feature_importance()


def test_seasonal_naive_repeats_last_same_weekday(examples: pd.DataFrame) -> None:
    x = examples[FEATURE_COLUMNS]
    model = SeasonalNaive().fit(x, examples["sales"].to_numpy())
    assert model.feature_ == "same_weekday_last"
    np.testing.assert_array_equal(model.predict(x), x["same_weekday_last"])
    with pytest.raises(ValueError, match="season"):
        SeasonalNaive(season=12).fit(x, examples["sales"].to_numpy())


def test_lightgbm_is_deterministic_and_non_negative(examples: pd.DataFrame) -> None:
    x, y = examples[FEATURE_COLUMNS], examples["sales"].to_numpy()
    first = _small_lgbm().fit(x, y).predict(x)
    second = _small_lgbm().fit(x, y).predict(x)
    np.testing.assert_array_equal(first, second)
    assert (first >= 0).all()


def test_lightgbm_categories_and_importance(examples: pd.DataFrame) -> None:
    x, y = examples[FEATURE_COLUMNS], examples["sales"].to_numpy()
    model = _small_lgbm().fit(x, y)
    assert model.categories_ == {
        "store_id": ["S01", "S02"],
        "item_id": ["I001", "I002", "I003"],
    }
    importance = model.feature_importance()
    assert set(importance) == set(FEATURE_COLUMNS)
    assert all(v >= 0 for v in importance.values()) and sum(importance.values()) > 0
    # A frame whose categories differ in order or content maps consistently.
    rows = x.head(20).copy()
    reordered = rows.assign(
        item_id=rows["item_id"].cat.reorder_categories(["I003", "I002", "I001"])
    )
    np.testing.assert_array_equal(model.predict(rows), model.predict(reordered))
    unseen = rows.assign(store_id=pd.Categorical(["S99"] * len(rows)))
    assert np.isfinite(model.predict(unseen)).all()
    with pytest.raises(ValueError, match="lacks"):
        model.predict(rows.drop(columns="lag_0"))


def test_lightgbm_beats_seasonal_naive_in_backtest() -> None:
    df = data.generate(n_stores=2, n_items=5, n_days=400, seed=42)
    common = {"horizon": 28, "n_folds": 2, "fold_step": 28}
    naive = backtest(df, SeasonalNaive, **common)
    lgbm = backtest(df, LightGBMForecaster, **common)
    log.info(
        "WAPE lightgbm %.4f vs seasonal naive %.4f",
        *(r.metrics["wape"] for r in (lgbm, naive)),
    )
    assert lgbm.metrics["wape"] < 0.9 * naive.metrics["wape"]
    assert lgbm.metrics["mase"] < naive.metrics["mase"]


def test_compact_narrows_dtypes_and_keeps_every_value(examples: pd.DataFrame) -> None:
    features = examples[FEATURE_COLUMNS]
    narrow = compact(examples, FEATURE_COLUMNS)
    pd.testing.assert_frame_equal(narrow, features, check_dtype=False)
    assert narrow["dow"].dtype == np.int8 and narrow["lag_0"].dtype == np.float32
    # Prices with cents and means of 7 days are not float32 numbers: kept.
    assert narrow["price"].dtype == np.float64
    assert narrow["rmean_7"].dtype == np.float64
    assert narrow["store_id"].dtype == features["store_id"].dtype
    assert narrow.memory_usage().sum() < 0.6 * features.memory_usage().sum()


# With the prices and the 7-day mean, LightGBM gets a float64 matrix; without
# them every column is narrow and it gets a float32 one: same model either way.
@pytest.mark.parametrize("drop", [[], ["price", "price_ratio", "rmean_7", "rmean_28"]])
def test_lightgbm_fits_the_same_model_on_compact_features(
    examples: pd.DataFrame, drop: list[str]
) -> None:
    columns = [c for c in FEATURE_COLUMNS if c not in drop + ["rstd_28"] * bool(drop)]
    wide = _small_lgbm().fit(examples[columns], examples["sales"].to_numpy())
    narrow = _small_lgbm().fit(compact(examples, columns), examples["sales"].to_numpy())
    dump = narrow.model_.booster_.model_to_string()
    assert dump == wide.model_.booster_.model_to_string()
    np.testing.assert_array_equal(
        narrow.predict(examples[columns]), wide.predict(examples[columns])
    )


def test_backtest_predictions_are_those_of_float64_folds() -> None:
    df = data.generate(n_stores=2, n_items=3, n_days=200, seed=5)
    result = backtest(df, _small_lgbm, horizon=14, n_folds=2, fold_step=14)
    origins = [pd.Timestamp(o) for o in sorted(result.predictions["origin"].unique())]
    examples = build_training_examples(
        df, horizon=14, last_origin=origins[-1] - pd.Timedelta(days=1)
    )
    for fold, origin in enumerate(origins):
        train = examples[examples["date"] <= origin]
        model = _small_lgbm().fit(train[FEATURE_COLUMNS], train["sales"].to_numpy())
        state = origin_state(df, origin)
        window = (df["date"] > origin) & (df["date"] <= origin + pd.Timedelta(days=14))
        targets = df.loc[window, [*TARGET_COLUMNS, "sales"]].merge(state[KEYS])
        test = build_features(state, targets, origin)
        rows = result.predictions[result.predictions["fold"] == fold]
        np.testing.assert_array_equal(
            rows["prediction"].to_numpy(), model.predict(test[FEATURE_COLUMNS])
        )
