"""Evaluation plots of the demand forecaster: residuals and feature importance.

Both are built from what the backtest already produced (its predictions and
the model of its last fold), so they cost no extra fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def residual_plot(predictions: pd.DataFrame) -> Figure:
    """Residuals (actual - forecast) of the model next to the baseline's.

    Three panels: residual against forecast (a funnel means the error grows
    with the level, a slope means bias), mean and spread of the residual per
    horizon (does the error grow with the lead time?), and the histograms of
    model and baseline residuals.

    Args:
        predictions: backtest rows with ``sales``, ``prediction``,
            ``baseline`` and ``horizon``.
    """
    residual = predictions["sales"] - predictions["prediction"]
    baseline = predictions["sales"] - predictions["baseline"]
    fig = Figure(figsize=(12, 3.6))
    scatter, by_horizon, hist = fig.subplots(1, 3)
    scatter.scatter(predictions["prediction"], residual, s=4, alpha=0.3)
    scatter.axhline(0.0, color="black", lw=0.8)
    scatter.set_xlabel("forecast")
    scatter.set_ylabel("actual - forecast")
    scatter.set_title("residual vs forecast", fontsize=9)

    grouped = residual.groupby(predictions["horizon"])
    mean, std = grouped.mean(), grouped.std().fillna(0.0)
    by_horizon.plot(mean.index, mean.to_numpy(), marker="o", ms=3, label="mean")
    by_horizon.fill_between(
        mean.index, (mean - std).to_numpy(), (mean + std).to_numpy(), alpha=0.2
    )
    by_horizon.axhline(0.0, color="black", lw=0.8)
    by_horizon.set_xlabel("horizon (days)")
    by_horizon.set_title("residual by horizon (mean +/- 1 sd)", fontsize=9)

    both = pd.concat([residual, baseline])
    low, high = np.nanpercentile(both, [1, 99]) if len(both) else (0.0, 1.0)
    bins = np.linspace(low, high if high > low else low + 1.0, 40)
    hist.hist(baseline, bins=bins, alpha=0.5, label="seasonal naive")
    hist.hist(residual, bins=bins, alpha=0.5, label="lightgbm")
    hist.set_xlabel("actual - forecast (1st-99th percentile)")
    hist.set_title("residual distribution", fontsize=9)
    hist.legend(fontsize=7)
    fig.tight_layout()
    return fig


def importance_plot(importance: dict[str, float], top: int = 20) -> Figure:
    """Horizontal bars of each feature's share of the total gain.

    Args:
        importance: gain per feature (``LightGBMForecaster.feature_importance``).
        top: how many features to show, largest first.
    """
    pairs = sorted(importance.items(), key=lambda p: -p[1])[:top]
    total = sum(importance.values()) or 1.0
    names = [name for name, _ in reversed(pairs)]
    shares = [gain / total for _, gain in reversed(pairs)]
    fig = Figure(figsize=(6, 0.28 * len(pairs) + 1.2))
    ax = fig.subplots()
    ax.barh(names, shares)
    ax.set_xlabel("share of total gain")
    ax.set_title("feature importance (model of the last backtest fold)", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
