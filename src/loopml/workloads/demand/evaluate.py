"""Forecast metrics and the rolling-origin backtest.

Metrics return NaN (never raise, never divide by zero) when their denominator
is zero, e.g. WAPE over rows that all sold nothing: the number is undefined,
and NaN makes any "is the candidate better?" comparison false, so an undefined
metric can never promote a model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    KEYS,
    TARGET_COLUMNS,
    build_features,
    build_training_examples,
    compact,
    origin_state,
)
from loopml.workloads.demand.models import ForecastModel

log = logging.getLogger(__name__)

HORIZON_BUCKETS: dict[str, tuple[int, int]] = {
    "h01_07": (1, 7),
    "h08_14": (8, 14),
    "h15_28": (15, 28),
}
ArrayLike = npt.ArrayLike


def _pair(
    y: ArrayLike, yhat: ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    actual = np.asarray(y, dtype=np.float64)
    forecast = np.asarray(yhat, dtype=np.float64)
    if actual.shape != forecast.shape:
        raise ValueError(f"y {actual.shape} and yhat {forecast.shape} differ")
    return actual, forecast


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator != 0 else float("nan")


def wape(y: ArrayLike, yhat: ArrayLike) -> float:
    """Weighted absolute percentage error: ``sum|y - yhat| / sum|y|``.

    Args:
        y: actual sales.
        yhat: forecasts, same shape as ``y``.

    Returns:
        The error as a fraction (0.25 is 25%); NaN when ``sum|y|`` is 0.
    """
    actual, forecast = _pair(y, yhat)
    return _ratio(np.abs(actual - forecast).sum(), np.abs(actual).sum())


def bias(y: ArrayLike, yhat: ArrayLike) -> float:
    """Relative bias ``sum(yhat - y) / sum(y)``; positive means over-forecast.

    Args:
        y: actual sales.
        yhat: forecasts, same shape as ``y``.

    Returns:
        The bias as a fraction; NaN when ``sum(y)`` is 0.
    """
    actual, forecast = _pair(y, yhat)
    return _ratio((forecast - actual).sum(), actual.sum())


def mase(y: ArrayLike, yhat: ArrayLike, scale: ArrayLike) -> float:
    """Mean absolute scaled error, pooled: ``mean|y - yhat| / mean(scale)``.

    Pooling (rather than averaging per-row ratios) keeps series that never
    change from dividing by zero and weighs series by their volume.

    Args:
        y: actual sales.
        yhat: forecasts.
        scale: in-sample seasonal-naive MAE of each row's series (or one
            number for all rows), see :func:`mase_scale`.

    Returns:
        The scaled error (below 1 beats the in-sample seasonal naive); NaN when
        there are no rows or the mean scale is 0.
    """
    actual, forecast = _pair(y, yhat)
    scales = np.broadcast_to(np.asarray(scale, dtype=np.float64), actual.shape)
    if actual.size == 0:
        return float("nan")
    return _ratio(np.abs(actual - forecast).mean(), scales.mean())


def mase_scale(df: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """Per-series MASE scale: in-sample MAE of the lag-7 seasonal naive.

    Args:
        df: canonical raw table (consecutive days per series); only rows
            dated on or before ``origin`` count.
        origin: the forecast origin.

    Returns:
        ``store_id, item_id, scale``; ``scale`` is NaN for series with fewer
        than 8 days of data.
    """
    past = df[df["date"] <= pd.Timestamp(origin)].sort_values([*KEYS, "date"])
    lagged = past.groupby(KEYS, sort=False)["sales"].shift(7)
    errors = (past["sales"] - lagged).abs()
    scale = errors.groupby([past[k] for k in KEYS], sort=True).mean()
    return scale.rename("scale").reset_index()


def evaluate_predictions(
    pred_frame: pd.DataFrame, scale: pd.DataFrame
) -> dict[str, float]:
    """WAPE, MASE and bias over all rows, plus WAPE and MASE per horizon bucket.

    Args:
        pred_frame: ``store_id, item_id, horizon, sales, prediction`` (and
            ``origin`` when ``scale`` is per origin).
        scale: ``store_id, item_id, scale``, optionally with ``origin``.

    Returns:
        ``wape, mase, bias`` and ``wape_<bucket>``, ``mase_<bucket>`` for every
        bucket of :data:`HORIZON_BUCKETS` that has rows.
    """
    keys = [k for k in (*KEYS, "origin") if k in scale.columns]
    rows = pred_frame.merge(scale[[*keys, "scale"]], on=keys, how="left")
    metrics = {
        "wape": wape(rows["sales"], rows["prediction"]),
        "mase": mase(rows["sales"], rows["prediction"], rows["scale"]),
        "bias": bias(rows["sales"], rows["prediction"]),
    }
    for name, (low, high) in HORIZON_BUCKETS.items():
        part = rows[rows["horizon"].between(low, high)]
        if len(part):
            metrics[f"wape_{name}"] = wape(part["sales"], part["prediction"])
            metrics[f"mase_{name}"] = mase(
                part["sales"], part["prediction"], part["scale"]
            )
    return metrics


@dataclass
class BacktestResult:
    """Pooled metrics and every test-row prediction of a backtest.

    Attributes:
        metrics: see :func:`evaluate_predictions`, pooled over all folds.
        predictions: ``store_id, item_id, origin, date, horizon, sales,
            prediction, fold``.
    """

    metrics: dict[str, float]
    predictions: pd.DataFrame


def backtest(
    df: pd.DataFrame,
    make_model: Callable[[], ForecastModel],
    horizon: int = 28,
    n_folds: int = 3,
    fold_step: int = 28,
    origin_step: int = 7,
    on_fold: Callable[[int, pd.DataFrame], None] | None = None,
) -> BacktestResult:
    """Rolling-origin backtest: train on the past, forecast the next horizon.

    Fold ``k`` (0-based) has origin ``t_k = last date - horizon - (n_folds - 1 -
    k) * fold_step``. A fresh model is fit on the training examples whose
    target date is ``<= t_k`` (so no label from the future), then forecasts
    ``h = 1..horizon`` from ``t_k`` for every series with 28 days of history.

    Args:
        df: canonical raw table.
        make_model: builds an unfitted model (called once per fold).
        horizon: longest horizon in days.
        n_folds: number of origins.
        fold_step: days between consecutive fold origins.
        origin_step: days between training origins.
        on_fold: called after each fold with its number (1-based) and the
            predictions of the folds so far (tuning reports them to ASHA).

    Returns:
        Pooled metrics and all predictions.

    Raises:
        ValueError: when a fold has no training examples.
    """
    started = time.perf_counter()
    last = pd.Timestamp(df["date"].max())
    day = pd.Timedelta(days=1)
    origins = [
        last - (horizon + (n_folds - 1 - k) * fold_step) * day for k in range(n_folds)
    ]
    examples = build_training_examples(
        df, horizon=horizon, origin_step=origin_step, last_origin=origins[-1] - day
    )
    # Every fold trains on a subset of these rows: keep them in exact narrow
    # dtypes, and take each fold's feature columns in one copy.
    dates = examples["date"].to_numpy()
    labels = examples["sales"].to_numpy()
    features = compact(examples, FEATURE_COLUMNS)
    del examples
    frames, scales = [], []
    for fold, origin in enumerate(origins):
        rows = dates <= origin.to_datetime64()
        if not rows.any():
            raise ValueError(
                f"fold {fold} (origin {origin.date()}) has no training data"
            )
        model = make_model().fit(features.loc[rows], labels[rows])
        state = origin_state(df, origin)
        window = (df["date"] > origin) & (df["date"] <= origin + horizon * day)
        targets = df.loc[window, [*TARGET_COLUMNS, "sales"]].merge(state[KEYS])
        test = build_features(state, targets, origin)
        frames.append(
            test[[*KEYS, "origin", "date", "horizon", "sales"]].assign(
                prediction=model.predict(test[FEATURE_COLUMNS]), fold=fold
            )
        )
        scales.append(mase_scale(df, origin).assign(origin=origin))
        if on_fold is not None:
            on_fold(fold + 1, pd.concat(frames, ignore_index=True))
    predictions = pd.concat(frames, ignore_index=True)
    predictions[KEYS] = predictions[KEYS].astype(str).astype(object)
    metrics = evaluate_predictions(predictions, pd.concat(scales, ignore_index=True))
    log.info(
        "backtest: %d folds, %d test rows, wape %.4f in %.1fs",
        n_folds,
        len(predictions),
        metrics["wape"],
        time.perf_counter() - started,
    )
    return BacktestResult(metrics, predictions)
