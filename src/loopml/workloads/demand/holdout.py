"""The promotion gate's holdout for demand: the latest ``horizon`` days.

Training (``DemandWorkload.train``) stops at the cut, ``last day - horizon``,
so neither a new challenger nor an older champion has seen the holdout's
sales; both forecast it from the same origin state at the cut, next to every
baseline (seasonal naive, moving average, last value), and are scored with the
backtest's own metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from loopml.workloads.demand.evaluate import evaluate_predictions, mase_scale, wape
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    KEYS,
    TARGET_COLUMNS,
    build_features,
    origin_state,
)
from loopml.workloads.demand.models import BASELINES, ForecastModel

STORE_PREFIX = "wape_store_"


def holdout_cut(data: pd.DataFrame, horizon: int) -> pd.Timestamp:
    """The last day training may use: ``horizon`` days before the last day."""
    return pd.Timestamp(data["date"].max()) - pd.Timedelta(days=horizon)


def holdout_metrics(
    data: pd.DataFrame, horizon: int, forecasters: Mapping[str, ForecastModel]
) -> dict[str, dict[str, float]]:
    """Score fitted forecasters and the baseline on the latest holdout.

    Args:
        data: the validated table.
        horizon: the holdout length and longest horizon, in days.
        forecasters: fitted models by name (e.g. ``challenger``, ``champion``).

    Returns:
        Per name (and per baseline of ``BASELINES``): ``wape, mase, bias,
        abs_bias``, WAPE per
        horizon bucket and ``wape_store_<store>`` per store.

    Raises:
        ValueError: when no series has the 28 days of history the cut needs.
    """
    cut = holdout_cut(data, horizon)
    state = origin_state(data, cut)
    if state.empty:
        raise ValueError(f"no series has 28 days of history up to the cut {cut.date()}")
    window = (data["date"] > cut) & data["sales"].notna()
    targets = data.loc[window, [*TARGET_COLUMNS, "sales"]].merge(state[KEYS])
    test = build_features(state, targets, cut)
    inputs = test[FEATURE_COLUMNS]
    sales = test["sales"].to_numpy(dtype=float)
    baselines = {name: cls().fit(inputs, sales) for name, cls in BASELINES.items()}
    scale = mase_scale(data, cut)
    scores: dict[str, dict[str, float]] = {}
    for name, model in {**forecasters, **baselines}.items():
        frame = test[[*KEYS, "horizon", "sales"]].assign(
            prediction=np.asarray(model.predict(inputs), dtype=np.float64)
        )
        frame[KEYS] = frame[KEYS].astype(str).astype(object)
        metrics = evaluate_predictions(frame, scale)
        metrics["abs_bias"] = abs(metrics["bias"])
        for store, part in frame.groupby("store_id", sort=True):
            metrics[f"{STORE_PREFIX}{store}"] = wape(part["sales"], part["prediction"])
        scores[name] = metrics
    return scores
