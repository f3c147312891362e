"""The demand-forecasting workload, as the platform's stages see it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from loopml.workloads.base import EvalOutput, TrainOutput, Workload
from loopml.workloads.demand import data as demand_data
from loopml.workloads.demand.evaluate import backtest
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    build_training_examples,
    origin_state,
)
from loopml.workloads.demand.models.lightgbm_forecaster import (
    LightGBMForecaster,
)
from loopml.workloads.demand.models.seasonal_naive import SeasonalNaive
from loopml.workloads.demand.pyfunc import DemandForecastModel
from loopml.workloads.demand.schema import validate_raw

if TYPE_CHECKING:
    from loopml.config import Settings

log = logging.getLogger(__name__)

DEFAULT_ONLINE_RETAIL = Path("../shared/datasets/online_retail/online_retail.parquet")


def _forecaster(settings: Settings) -> LightGBMForecaster:
    params = settings.demand.model
    return LightGBMForecaster(
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        num_leaves=params.num_leaves,
        min_child_samples=params.min_child_samples,
        seed=settings.seed,
    )


def _forecast_plot(predictions: pd.DataFrame, n_series: int = 4) -> Figure:
    """Forecast vs actual of the last backtest fold for the biggest series."""
    last = predictions[predictions["fold"] == predictions["fold"].max()]
    volume = last.groupby(["store_id", "item_id"], observed=True)["sales"].sum()
    top = volume.sort_values(ascending=False).index[:n_series]
    fig = Figure(figsize=(9, 2.4 * len(top)))
    axes = fig.subplots(len(top), 1, squeeze=False)
    for ax, (store, item) in zip(axes[:, 0], top, strict=False):
        rows = last[(last["store_id"] == store) & (last["item_id"] == item)]
        rows = rows.sort_values("date")
        ax.plot(rows["date"], rows["sales"], label="actual", color="black")
        ax.plot(rows["date"], rows["prediction"], label="lightgbm")
        ax.plot(rows["date"], rows["baseline"], label="seasonal naive", ls="--")
        ax.set_title(f"{store} / {item}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


class DemandWorkload(Workload):
    """Daily demand per store x item, forecast up to ``horizon`` days ahead."""

    name = "demand"
    primary_metric = "wape"
    higher_is_better = False
    key_metrics = ("wape", "baseline_wape", "mase", "baseline_mase", "bias")

    def load_raw(self, settings: Settings) -> pd.DataFrame:
        """Generate the embedded data set or load Online Retail."""
        cfg = settings.demand
        data_path = cfg.data_path
        if cfg.dataset == "online-retail" and data_path is None:
            data_path = DEFAULT_ONLINE_RETAIL
        return demand_data.load(
            cfg.dataset,
            data_path,
            n_stores=cfg.n_stores,
            n_items=cfg.n_items,
            n_days=cfg.n_days,
            start=cfg.start,
            seed=settings.seed,
            top_n_items=cfg.top_n_items,
        )

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Run the raw-table schema (raises ``DataValidationError``)."""
        return validate_raw(raw)

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit one global LightGBM on every origin with observed targets."""
        cfg = settings.demand
        examples = build_training_examples(
            data, horizon=cfg.horizon, origin_step=cfg.origin_step
        )
        model = _forecaster(settings).fit(
            examples[FEATURE_COLUMNS], examples["sales"].to_numpy(dtype=float)
        )
        origin = pd.Timestamp(data["date"].max())
        state = origin_state(data, origin)
        last = data.sort_values("date").groupby(["store_id", "item_id"]).tail(1)
        state = state.merge(
            last[["store_id", "item_id", "price"]].rename(
                columns={"price": "last_price"}
            ),
            on=["store_id", "item_id"],
            how="left",
        )
        wrapped = DemandForecastModel(model, state, origin, cfg.horizon)
        first = state.iloc[0]
        example = pd.DataFrame(
            {
                "store_id": [str(first["store_id"])] * 2,
                "item_id": [str(first["item_id"])] * 2,
                "date": [
                    (origin + pd.Timedelta(days=h)).strftime("%Y-%m-%d")
                    for h in (1, cfg.horizon)
                ],
                "price": [float(first["last_price"])] * 2,
                "promo": [0, 1],
                "holiday": [0, 0],
            }
        )
        params = {
            "model": "lightgbm_forecaster",
            "dataset": cfg.dataset,
            "horizon": cfg.horizon,
            "origin_step": cfg.origin_step,
            "seed": settings.seed,
            "n_series": len(state),
            "n_training_rows": len(examples),
            "origin": str(origin.date()),
            **{f"lgbm_{k}": v for k, v in model.get_params().items()},
        }
        return TrainOutput(wrapped, params, example)

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Backtest LightGBM and the seasonal-naive baseline on the same folds."""
        cfg = settings.demand
        common = {
            "horizon": cfg.horizon,
            "n_folds": cfg.n_folds,
            "fold_step": cfg.fold_step,
            "origin_step": cfg.origin_step,
        }
        model_bt = backtest(data, lambda: _forecaster(settings), **common)
        base_bt = backtest(data, SeasonalNaive, **common)
        metrics = dict(model_bt.metrics)
        metrics.update({f"baseline_{k}": v for k, v in base_bt.metrics.items()})
        keys = ["store_id", "item_id", "date", "fold"]
        merged = model_bt.predictions.merge(
            base_bt.predictions[[*keys, "prediction"]].rename(
                columns={"prediction": "baseline"}
            ),
            on=keys,
        )
        return EvalOutput(
            metrics=metrics,
            figures={"forecast_vs_actual": _forecast_plot(merged)},
        )
