"""The demand-forecasting workload, as the platform's stages see it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from loopml.sdk.batch import BatchSpec, DailyBatch
from loopml.sdk.capabilities import (
    BatchScorer,
    DaySource,
    FeatureViews,
    Monitor,
    OnlineScorer,
)
from loopml.sdk.workload import EvalOutput, TrainOutput, Workload
from loopml.workloads.demand import data as demand_data
from loopml.workloads.demand import holdout, tuning
from loopml.workloads.demand.config import DemandSettings
from loopml.workloads.demand.evaluate import backtest
from loopml.workloads.demand.feature_views import DemandFeatureViews
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    compact,
    origin_state,
)
from loopml.workloads.demand.models import BASELINES
from loopml.workloads.demand.models.lightgbm_forecaster import (
    LightGBMForecaster,
)
from loopml.workloads.demand.schema import (
    KEY_COLUMNS,
    PERSONAL_COLUMNS,
    validate_raw,
    validate_training_examples,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loopml.core.config import Settings
    from loopml.sdk.tuning import Report, SearchParam

log = logging.getLogger(__name__)

DEFAULT_ONLINE_RETAIL = Path("../shared/datasets/online_retail/online_retail.parquet")
DEFAULT_BIKE_SHARING = Path("../shared/datasets/bike_sharing/day.csv")
DEFAULT_PATHS = {
    "online-retail": DEFAULT_ONLINE_RETAIL,
    "bike-sharing": DEFAULT_BIKE_SHARING,
}


def _forecaster(settings: Settings) -> LightGBMForecaster:
    params = DemandSettings.of(settings).model
    return LightGBMForecaster(
        n_estimators=params.n_estimators,
        learning_rate=params.learning_rate,
        num_leaves=params.num_leaves,
        min_child_samples=params.min_child_samples,
        seed=settings.seed,
    )


def _forecast_plot(
    predictions: pd.DataFrame, baseline: str, n_series: int = 4
) -> Figure:
    """Forecast vs actual (and the strongest baseline) of the last fold."""
    from matplotlib.figure import Figure

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
        ax.plot(rows["date"], rows["baseline"], label=baseline, ls="--")
        ax.set_title(f"{store} / {item}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


class DemandWorkload(Workload):
    """Daily demand per store x item, forecast up to ``horizon`` days ahead."""

    name = "demand"
    settings_class = DemandSettings
    stage_params: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "ingest": (
            "dataset",
            "data_path",
            "n_stores",
            "n_items",
            "n_days",
            "start",
            "top_n_items",
        ),
        "validate": ("min_rows_ratio", "max_rows_ratio"),
        "train": ("horizon", "origin_step", "model"),
        "evaluate": ("horizon", "n_folds", "fold_step", "origin_step", "model"),
        "promote": ("horizon",),
    }
    primary_metric = "wape"
    higher_is_better = False
    key_metrics = ("wape", "baseline_wape", "mase", "baseline_mase", "bias")
    batch_spec = BatchSpec(
        time_column="date",
        sort_columns=tuple(KEY_COLUMNS),
        personal_columns=PERSONAL_COLUMNS,
    )

    def load_raw(self, settings: Settings, n_days: int | None = None) -> pd.DataFrame:
        """Generate the embedded data set (``n_days`` long) or load a real one."""
        cfg = DemandSettings.of(settings)
        data_path = cfg.data_path or DEFAULT_PATHS.get(cfg.dataset)
        return demand_data.load(
            cfg.dataset,
            data_path,
            n_stores=cfg.n_stores,
            n_items=cfg.n_items,
            n_days=n_days or cfg.n_days,
            start=cfg.start,
            seed=settings.seed,
            top_n_items=cfg.top_n_items,
        )

    def load_day(self, settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
        """One day of the source: its rows dated ``day`` (maybe none).

        The generated world is extended up to ``day`` when it is later than
        ``n_days``; the generator is prefix-stable, so the days before stay
        exactly as a snapshot had them. Real data replays its own dates.
        """
        cfg = DemandSettings.of(settings)
        needed = (pd.Timestamp(day) - pd.Timestamp(cfg.start)).days + 1
        longer = max(cfg.n_days, needed) if cfg.dataset == "generated" else None
        raw = self.load_raw(settings, n_days=longer)
        return raw[raw["date"] == pd.Timestamp(day)].reset_index(drop=True)

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Run the raw-table schema (raises ``DataValidationError``)."""
        return validate_raw(raw)

    def validate_batch(
        self, settings: Settings, raw: pd.DataFrame, batch: DailyBatch
    ) -> pd.DataFrame:
        """Run the raw-table schema plus the checks of the new days."""
        return validate_raw(
            raw,
            new_days=batch.days,
            reference_rows_per_day=batch.reference_rows_per_day,
            min_rows_ratio=DemandSettings.of(settings).min_rows_ratio,
            max_rows_ratio=DemandSettings.of(settings).max_rows_ratio,
        )

    def feature_views(self) -> FeatureViews:
        """The series state, price and today's-sales views."""
        return DemandFeatureViews()

    def batch_scorer(self) -> BatchScorer:
        """Every series' forecasts over the horizon (``demand/batch.py``)."""
        from loopml.workloads.demand.batch import DemandBatchScorer

        return DemandBatchScorer()

    def monitor(self) -> Monitor:
        """Sales index drift, prediction drift, live WAPE (``monitoring.py``)."""
        from loopml.workloads.demand.monitoring import DemandMonitor

        return DemandMonitor()

    def day_source(self) -> DaySource:
        """The generated world after the history, for replay (``replay.py``)."""
        from loopml.workloads.demand.replay import DemandDaySource

        return DemandDaySource()

    def online_scorer(self) -> OnlineScorer:
        """Forecasts online (``DemandScorer``): every protocol, online state."""
        from loopml.workloads.demand.serving import DemandScorer

        return DemandScorer()

    def models(self) -> Mapping[str, Callable[[], Any]]:
        """The forecaster and the baselines."""
        from loopml.workloads.demand.models import MODELS

        return MODELS

    def training_examples(self, settings: Settings, data: pd.DataFrame) -> pd.DataFrame:
        """Labelled examples for every origin, origin states from Feast.

        The states come from the offline store by point-in-time joins
        (``loopml features`` must have published ``data``); labels and
        target-date attributes from ``data``. Same rows and values as
        ``build_training_examples`` (tests/integration/test_feature_store.py).
        """
        from loopml.sdk.feast import open_store
        from loopml.workloads.demand.training_set import training_examples

        cfg = DemandSettings.of(settings)
        return training_examples(
            open_store(settings), data, horizon=cfg.horizon, origin_step=cfg.origin_step
        )

    baselines = ("seasonal_naive", "moving_average", "last_value")
    guard_metrics: ClassVar[dict[str, bool]] = {"abs_bias": False}
    slice_prefix = holdout.STORE_PREFIX
    intended_use = (
        "Daily demand forecasts per store x item, 1 to `horizon` days ahead, "
        "for replenishment and staffing plans; planned prices and promotions "
        "are inputs. Reviewed by planners, not executed blindly."
    )
    limitations = (
        "Needs 28 days of history per series (new items: none until then). "
        "Learns from the stores, items and promotions it saw: a new kind of "
        "promotion, a price far outside the training range or a shock (store "
        "closure, stock-out recorded as zero sales) is not anticipated. "
        "Forecasts are means (Tweedie), not quantiles."
    )

    def holdout_metrics(
        self, settings: Settings, data: pd.DataFrame, models: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        """WAPE, MASE, |bias| and WAPE per store on the last ``horizon`` days."""
        forecasters = {name: model.forecaster for name, model in models.items()}
        return holdout.holdout_metrics(
            data, DemandSettings.of(settings).horizon, forecasters
        )

    def check_model(
        self, settings: Settings, model: Any, example: pd.DataFrame | None
    ) -> list[str]:
        """Forecasts of the input example: one per row, finite, not negative."""
        if example is None:
            return ["the model has no input example to check"]
        values = np.asarray(model.forecast(example), dtype=np.float64)
        problems = []
        if values.shape != (len(example),):
            problems.append(f"{values.shape} forecasts for {len(example)} rows")
        if not np.isfinite(values).all():
            problems.append("a forecast is NaN or infinite")
        if (values < 0).any():
            problems.append("a forecast is negative")
        return problems

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit one global LightGBM on every origin with observed targets.

        Training stops at the holdout cut (``last day - horizon``): the gate
        scores the model on the days after it. The state it forecasts from is
        the latest day's, so serving is not ``horizon`` days behind.
        """
        cfg = DemandSettings.of(settings)
        cut = holdout.holdout_cut(data, cfg.horizon)
        examples = self.training_examples(settings, data[data["date"] <= cut])
        # A broken feature pipeline must stop here, not train a quiet bad model.
        validate_training_examples(examples)
        n_examples, labels = len(examples), examples["sales"].to_numpy(dtype=float)
        # Exact narrow dtypes, and the wide frame gone before LightGBM makes
        # its own float matrix: the same model in about half the memory.
        features = compact(examples, FEATURE_COLUMNS)
        del examples
        model = _forecaster(settings).fit(features, labels)
        del features
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
        # Imported here, like the plots: a tuning trial's actor needs neither
        # MLflow's pyfunc nor matplotlib, and imports this module.
        from loopml.workloads.demand.pyfunc import DemandForecastModel

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
            "n_training_rows": n_examples,
            "train_until": str(cut.date()),
            "origin": str(origin.date()),
            **{f"lgbm_{k}": v for k, v in model.get_params().items()},
        }
        return TrainOutput(wrapped, params, example)

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Backtest LightGBM and every baseline on the same folds.

        Metrics: the model's, ``<baseline>_<metric>`` for each of
        :attr:`baselines`, and ``baseline_<metric>`` for the strongest of
        them on WAPE (the bar the plots and the summary show).
        """
        cfg = DemandSettings.of(settings)
        common: dict[str, Any] = {
            "horizon": cfg.horizon,
            "n_folds": cfg.n_folds,
            "fold_step": cfg.fold_step,
            "origin_step": cfg.origin_step,
        }
        fitted: list[LightGBMForecaster] = []

        def make_model() -> LightGBMForecaster:
            # Kept so the importance plot shows the last fold's model (no refit).
            fitted.append(_forecaster(settings))
            return fitted[-1]

        model_bt = backtest(data, make_model, **common)
        metrics = dict(model_bt.metrics)
        runs = {name: backtest(data, cls, **common) for name, cls in BASELINES.items()}
        for name, run in runs.items():
            metrics.update({f"{name}_{k}": v for k, v in run.metrics.items()})
        best = min(runs, key=lambda name: runs[name].metrics["wape"])
        base_bt = runs[best]
        metrics.update({f"baseline_{k}": v for k, v in base_bt.metrics.items()})
        keys = ["store_id", "item_id", "date", "fold"]
        merged = model_bt.predictions.merge(
            base_bt.predictions[[*keys, "prediction"]].rename(
                columns={"prediction": "baseline"}
            ),
            on=keys,
        )
        from loopml.workloads.demand.plots import importance_plot, residual_plot

        return EvalOutput(
            metrics=metrics,
            figures={
                "forecast_vs_actual": _forecast_plot(merged, best),
                "residuals": residual_plot(merged),
                "feature_importance": importance_plot(fitted[-1].feature_importance()),
            },
        )

    def search_space(self, settings: Settings) -> dict[str, SearchParam]:
        """LightGBM's size, rate and leaf parameters (``demand.model``)."""
        return dict(tuning.SEARCH_SPACE)

    def with_params(self, settings: Settings, params: Mapping[str, Any]) -> Settings:
        """Settings whose ``demand.model`` takes ``params``."""
        return tuning.with_params(settings, params)

    def current_params(self, settings: Settings) -> dict[str, Any]:
        """``demand.model``'s values of the search space's parameters."""
        model = DemandSettings.of(settings).model
        return {name: getattr(model, name) for name in tuning.SEARCH_SPACE}

    def tune_steps(self, settings: Settings) -> int:
        """One report per tuning fold, so ASHA can stop a trial between folds."""
        return settings.tune.n_folds

    def tune_objective(
        self,
        settings: Settings,
        data: pd.DataFrame,
        params: Mapping[str, Any],
        report: Report | None = None,
    ) -> float:
        """Backtest WAPE of ``params`` on folds before ``evaluate``'s."""
        tuned = self.with_params(settings, params)
        return tuning.objective(tuned, data, lambda: _forecaster(tuned), report)
