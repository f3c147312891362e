"""What ``loopml monitor`` watches for demand, and how it measures it.

**Drift columns.** Pooled raw sales are a mixture of series whose levels
differ by two orders of magnitude, so their standard deviation is mostly
the spread between series: measured on the generator, a real x1.6 level
shift moved a week's pooled sales by 0.34 reference SDs (median), hardly
more than the 0.27 they moved without drift (docs/monitoring.md). So the
columns are made comparable first:

* ``sales_index``: a day's sales divided by the series' mean sales on that
  weekday in the reference window, on regular days only (no promotion, no
  holiday: those effects are planned and known to the model). 1 means "as
  usual". Every lag and rolling feature of the model is built from sales,
  so this is the column that moves when demand moves.
* ``price`` (pooled; prices change rarely and by steps) and ``promo`` (a 0/1
  flag: the Wasserstein distance of a flag is the change in the promotion
  rate, in reference SDs).

``holiday`` and the calendar columns are not judged: a week with a bank
holiday always differs from eight weeks of reference, and nothing is wrong.

**Reference.** The last ``monitor.reference_days`` days of the champion's
training data, ending at its last training day or the day before the current
window, whichever is earlier; **current**: the last ``monitor.window_days``
days up to the monitored day.

**Predictions.** ``forecast_index``: one-day-ahead forecasts of the champion
(each day from the state the day before, as a daily batch would) over the
series' weekday level, reference days against the current window; the
served forecasts of the inference log replace the current side when the
service logged some.

**Performance.** Forecasts whose target date has an actual by now: the
logged ones (the API, batch jobs, the replay), else the champion's own
forecasts from its origin (:func:`replayed_forecasts`): WAPE and bias.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.sdk.capabilities import Monitor, MonitorContext
from loopml.workloads.demand.config import DemandSettings
from loopml.workloads.demand.fastpath import (
    FastForecaster,
    SeriesStates,
    timestamp_day,
)
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    HISTORY_DAYS,
    KEYS,
    build_features,
    origin_states,
)

if TYPE_CHECKING:
    from loopml.core.config import MonitorSettings
    from loopml.workloads.demand.pyfunc import DemandForecastModel

NUMERICAL = ["sales_index", "price", "promo"]
CATEGORICAL: list[str] = []
#: the logged column holding the model's output.
PREDICTION = "forecast"
PRIMARY_METRIC = "wape"


def _window(data: pd.DataFrame, end: pd.Timestamp, days: int) -> pd.DataFrame:
    start = end - pd.Timedelta(days=days)
    return data[(data["date"] > start) & (data["date"] <= end)]


def levels(reference: pd.DataFrame) -> pd.DataFrame:
    """Mean sales per series and weekday on the reference's regular days."""
    regular = reference[(reference["promo"] == 0) & (reference["holiday"] == 0)]
    return (
        regular.assign(dow=regular["date"].dt.dayofweek)
        .groupby([*KEYS, "dow"], observed=True)["sales"]
        .mean()
        .rename("level")
        .reset_index()
    )


def indexed(frame: pd.DataFrame, level: pd.DataFrame, column: str) -> pd.Series:
    """``column`` over the series' weekday level; NaN off regular days.

    Args:
        frame: rows with ``store_id, item_id, date, promo, holiday, column``.
        level: the output of :func:`levels`.
        column: the value to index (``sales``, or a forecast).

    Returns:
        The index, aligned with ``frame``'s rows (1 means "as usual").
    """
    dates = pd.to_datetime(frame["date"])
    keyed = pd.DataFrame(
        {
            "store_id": frame["store_id"].astype(str).to_numpy(),
            "item_id": frame["item_id"].astype(str).to_numpy(),
            "dow": dates.dt.dayofweek.to_numpy(),
        }
    )
    level = level.assign(
        store_id=level["store_id"].astype(str), item_id=level["item_id"].astype(str)
    )
    joined = keyed.merge(level, on=[*KEYS, "dow"], how="left")
    regular = (frame["promo"].to_numpy() == 0) & (frame["holiday"].to_numpy() == 0)
    # A floor of one sale keeps near-empty series from exploding the index.
    index = frame[column].to_numpy(dtype=float) / joined["level"].clip(
        lower=1.0
    ).to_numpy(dtype=float)
    return pd.Series(np.where(regular, index, np.nan), index=frame.index)


def samples(
    data: pd.DataFrame,
    reference_end: pd.Timestamp,
    day: pd.Timestamp,
    cfg: MonitorSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current samples of the drift columns.

    Args:
        data: the validated table.
        reference_end: the last day of the reference window (the champion's
            last training day, and before the current window).
        day: the monitored day (the current window ends there).
        cfg: window and reference lengths.

    Returns:
        ``(reference, current)``, one row per series and day, with
        :data:`NUMERICAL` columns (``sales_index`` NaN on promotion and
        holiday days).
    """
    reference = _window(data, reference_end, cfg.reference_days)
    current = _window(data, day, cfg.window_days)
    level = levels(reference)

    def columns(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "sales_index": indexed(frame, level, "sales").to_numpy(),
                "price": frame["price"].to_numpy(dtype=float),
                "promo": frame["promo"].to_numpy(dtype=float),
            }
        )

    return columns(reference), columns(current)


def one_day_ahead(
    model: DemandForecastModel, data: pd.DataFrame, end: pd.Timestamp, days: int
) -> pd.DataFrame:
    """The model's forecast of each day in ``end - days + 1 .. end``, one day ahead.

    Each day is forecast from every series' state the day before, with the
    day's actual price, promotion and holiday: what a daily batch would have
    predicted. Series without 28 days of history are left out.

    Returns:
        ``store_id, item_id, date, promo, holiday, forecast``, all days.
    """
    first = end - pd.Timedelta(days=days)
    # The states need 28 days of history before the first origin.
    recent = data[data["date"] > first - pd.Timedelta(days=HISTORY_DAYS)]
    fast = model.fast()
    frames = []
    by_day = dict(tuple(recent.groupby("date", sort=False)))
    for origin, state in origin_states(recent, first, end - pd.Timedelta(days=1)):
        target = origin + pd.Timedelta(days=1)
        on_target = by_day.get(target)
        if on_target is None:
            continue
        plan = on_target.merge(state[KEYS], on=KEYS)
        if plan.empty:
            continue
        rows = model.requests_frame(plan[[*KEYS, "date", "price", "promo", "holiday"]])
        if fast is not None:  # the pandas-free path, proven equal on random rows
            frames.append(_fast_day(model, fast[0], state, rows, origin))
        else:
            frames.append(build_features(state, rows, origin))
    if frames and fast is not None:
        return pd.concat(frames, ignore_index=True)
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "date", "promo", "holiday", PREDICTION])
    features = pd.concat(frames, ignore_index=True)
    # One predict call for every day: LightGBM's per-call cost dominates.
    values = model.forecaster.predict(features[FEATURE_COLUMNS])
    out = features[[*KEYS, "date", "promo", "holiday"]].copy()
    out[PREDICTION] = np.asarray(values, dtype=np.float64)
    return out


#: :func:`one_day_ahead`'s rows of one target day, by model and the rows read.
_BY_TARGET: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()
#: Target days remembered: two reference windows and more.
_KEPT_DAYS = 200


def remembered_one_day_ahead(
    model: Callable[[], DemandForecastModel],
    model_key: tuple[Any, ...],
    data: pd.DataFrame,
    end: pd.Timestamp,
    days: int,
) -> pd.DataFrame:
    """:func:`one_day_ahead`, each target day computed once in a process.

    A target day's forecasts read only the rows of that day and of the
    :data:`HISTORY_DAYS` days before it (the state at its origin), so they
    are remembered by ``model_key`` (what identifies the model: its home,
    version and tags, checksum among them), the day and a hash of those
    rows. A process monitoring day after day (``loopml replay``) then
    forecasts a reference window once per champion, and one new day when
    the window slides, instead of every day of it every day.

    Args:
        model: loads the model (called only when a day is not remembered).
        model_key: identifies the model.
        data: the validated table.
        end: the last target day.
        days: how many target days, up to ``end``.

    Returns:
        What ``one_day_ahead(model(), data, end, days)`` returns, row for row.
    """
    first = end - pd.Timedelta(days=days)
    reads = data[
        (data["date"] > first - pd.Timedelta(days=HISTORY_DAYS)) & (data["date"] <= end)
    ]
    hashed = pd.util.hash_pandas_object(reads, index=False).to_numpy()
    digests = {
        pd.Timestamp(date): hashlib.sha256(hashed[rows].tobytes()).hexdigest()
        for date, rows in reads.groupby("date", sort=False).indices.items()
    }
    signature = (model_key, repr(list(reads.dtypes.items())))
    targets = [first + pd.Timedelta(days=k) for k in range(1, days + 1)]
    keys = {
        target: (
            signature,
            target,
            tuple(
                digests.get(target - pd.Timedelta(days=k))
                for k in range(HISTORY_DAYS, -1, -1)
            ),
        )
        for target in targets
    }
    missing = [t for t in targets if keys[t] not in _BY_TARGET]
    # Forecast each run of consecutive missing days in one go.
    runs: list[list[pd.Timestamp]] = []
    for target in missing:
        if runs and target - runs[-1][-1] == pd.Timedelta(days=1):
            runs[-1].append(target)
        else:
            runs.append([target])
    for run in runs:
        rows = one_day_ahead(model(), data, run[-1], len(run))
        grouped = rows.groupby(pd.to_datetime(rows["date"]), sort=False)
        by_date = {pd.Timestamp(k): v for k, v in grouped.indices.items()}
        for target in run:
            at = by_date.get(target)
            piece = rows.iloc[[] if at is None else at].reset_index(drop=True)
            _BY_TARGET[keys[target]] = piece
    pieces = []
    for target in targets:
        _BY_TARGET.move_to_end(keys[target])
        pieces.append(_BY_TARGET[keys[target]])
    while len(_BY_TARGET) > max(_KEPT_DAYS, days):
        _BY_TARGET.popitem(last=False)
    found = [piece for piece in pieces if len(piece)]
    if not found:  # as one_day_ahead says "nothing"
        return pd.DataFrame(columns=[*KEYS, "date", "promo", "holiday", PREDICTION])
    return pd.concat(found, ignore_index=True)


def _fast_day(
    model: DemandForecastModel,
    forecaster: FastForecaster,
    state: pd.DataFrame,
    rows: pd.DataFrame,
    origin: pd.Timestamp,
) -> pd.DataFrame:
    """One day of :func:`one_day_ahead` through the fast path's float matrix.

    ``rows`` come from ``requests_frame`` (prices filled), so the state's
    ``last_price`` is never read; it is set as the model would fill it.
    """
    keys = list(
        zip(state["store_id"].astype(str), state["item_id"].astype(str), strict=True)
    )
    states = SeriesStates.of(
        state.assign(last_price=[model.last_price.get(k, np.nan) for k in keys])
    )
    out = rows[[*KEYS, "date", "promo", "holiday"]].reset_index(drop=True)
    out[PREDICTION] = model.forecast_fast(
        rows, forecaster, states, timestamp_day(origin)
    )
    return out


def prediction_samples(
    reference_rows: pd.DataFrame,
    current_rows: pd.DataFrame,
    data: pd.DataFrame,
    reference_end: pd.Timestamp,
    cfg: MonitorSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecasts indexed by the reference's weekday levels, as drift samples.

    Args:
        reference_rows: forecasts of reference days (:func:`one_day_ahead`).
        current_rows: forecasts of the current window, replayed or logged
            (``store_id, item_id, date, promo, holiday, forecast``).
        data: the validated table (for the levels).
        reference_end: the last day of the reference window.
        cfg: the reference length.

    Returns:
        ``(reference, current)`` with one column, ``forecast_index``.
    """
    level = levels(_window(data, reference_end, cfg.reference_days))

    def column(rows: pd.DataFrame) -> pd.DataFrame:
        if rows.empty:
            return pd.DataFrame({"forecast_index": pd.Series(dtype=float)})
        # Logged rows may lack the flags; the model reads a missing one as 0.
        rows = rows.reset_index(drop=True).fillna({"promo": 0, "holiday": 0})
        values = indexed(rows, level, PREDICTION)
        return pd.DataFrame({"forecast_index": values.to_numpy()})

    return column(reference_rows), column(current_rows)


def replayed_forecasts(
    model: DemandForecastModel, data: pd.DataFrame, day: pd.Timestamp
) -> pd.DataFrame:
    """What the champion forecast from its own origin for the days up to ``day``.

    The model bundles its state at its origin (the last training day), so
    its forecasts of the following ``horizon`` days are the ones it made
    then; the actual price, promotion and holiday of each day are used.

    Returns:
        ``store_id, item_id, date, forecast`` (empty when ``day`` is not
        after the origin).
    """
    origin = pd.Timestamp(model.origin)
    last = min(day, origin + pd.Timedelta(days=model.horizon))
    rows = data[(data["date"] > origin) & (data["date"] <= last)]
    rows = rows[
        [
            model.known(str(s), str(i))
            for s, i in zip(*[rows[k] for k in KEYS], strict=True)
        ]
    ]
    if rows.empty:
        return pd.DataFrame(columns=[*KEYS, "date", PREDICTION])
    plan = rows[[*KEYS, "date", "price", "promo", "holiday"]].reset_index(drop=True)
    return plan.assign(forecast=model.forecast(plan))[[*KEYS, "date", PREDICTION]]


def quality(data: pd.DataFrame, day: pd.Timestamp, window_days: int) -> dict[str, Any]:
    """Completeness and sanity of the current window.

    Returns:
        ``rows``, ``expected_rows`` (series x days), ``missing_share`` (of
        cells), ``zero_sales_share``, ``days`` present.
    """
    current = _window(data, day, window_days)
    n_series = len(data[KEYS].drop_duplicates())
    cells = current.size or 1
    return {
        "rows": len(current),
        "expected_rows": n_series * window_days,
        "days": int(current["date"].nunique()),
        "missing_share": float(current.isna().sum().sum() / cells),
        "zero_sales_share": float((current["sales"] == 0).mean())
        if len(current)
        else 0.0,
    }


def performance(
    logged: pd.DataFrame, data: pd.DataFrame, day: pd.Timestamp, window_days: int
) -> dict[str, Any] | None:
    """WAPE and bias of logged forecasts for target dates in the window.

    Args:
        logged: inference-log rows (``store_id, item_id, date, forecast``).
        data: the validated table (the actuals).
        day: the monitored day.
        window_days: target dates ``day - window_days + 1 .. day`` count.

    Returns:
        ``metric``, ``value`` (WAPE), ``bias`` (sum forecast / sum actual -
        1), ``n`` labelled forecasts; ``None`` when none has its actual yet.
    """
    if logged.empty or PREDICTION not in logged.columns:
        return None
    forecasts = logged[[*KEYS, "date", PREDICTION]].assign(
        date=pd.to_datetime(logged["date"]).astype("datetime64[ns]")
    )
    actuals = _window(data, day, window_days)[[*KEYS, "date", "sales"]]
    joined = forecasts.merge(actuals, on=[*KEYS, "date"], how="inner")
    total = float(joined["sales"].sum())
    if joined.empty or total <= 0:
        return None
    error = float(np.abs(joined[PREDICTION] - joined["sales"]).sum())
    return {
        "metric": PRIMARY_METRIC,
        "value": error / total,
        "bias": float(joined[PREDICTION].sum()) / total - 1.0,
        "n": len(joined),
    }


def in_window(
    logged: pd.DataFrame, day: pd.Timestamp, window_days: int
) -> pd.DataFrame:
    """Logged forecasts whose target date is in the current window."""
    if logged.empty or PREDICTION not in logged.columns:
        return pd.DataFrame()
    target = pd.to_datetime(logged["date"])
    start = day - pd.Timedelta(days=window_days)
    return logged[(target > start) & (target <= day)].reset_index(drop=True)


def of_version(logged: pd.DataFrame, version: str) -> pd.DataFrame:
    """The logged rows one model version answered (all rows of an old log)."""
    if logged.empty or "model_version" not in logged.columns:
        return logged
    mine = logged["model_version"].astype(str) == str(version)
    return logged[mine].reset_index(drop=True)


def challenger_performance(
    logged: pd.DataFrame,
    champion: str,
    data: pd.DataFrame,
    day: pd.Timestamp,
    window_days: int,
) -> dict[str, Any]:
    """Live metric of every other version in the log (canary or shadow rows)."""
    if logged.empty or "model_version" not in logged.columns:
        return {}
    result: dict[str, Any] = {}
    for other in sorted(set(logged["model_version"].astype(str)) - {str(champion)}):
        rows = of_version(logged, other)
        measured = performance(rows, data, day, window_days)
        if measured is not None:
            roles = rows["source"] if "source" in rows else pd.Series(["online"])
            result[other] = {**measured, "sources": sorted(set(roles.astype(str)))}
    return result


class DemandMonitor(Monitor):
    """Demand's drift columns, quality, prediction drift and live WAPE."""

    numerical = tuple(NUMERICAL)
    categorical = tuple(CATEGORICAL)

    def samples(
        self,
        data: pd.DataFrame,
        reference_end: pd.Timestamp,
        day: pd.Timestamp,
        cfg: MonitorSettings,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``sales_index``, ``price`` and ``promo`` (see :func:`samples`)."""
        return samples(data, reference_end, day, cfg)

    def quality(
        self, data: pd.DataFrame, day: pd.Timestamp, window_days: int
    ) -> dict[str, Any]:
        """Rows, expected rows, days, missing and zero-sales shares."""
        return quality(data, day, window_days)

    def live(self, context: MonitorContext) -> dict[str, Any]:
        """Prediction drift, live WAPE of the champion and of its challengers.

        The served forecasts of the inference log whose target date is in the
        current window (made up to a horizon before it) are the champion's
        own answers; a challenger's (canary, shadow) are judged beside it.
        Without served forecasts, the champion's one-day-ahead forecasts
        stand in for the prediction drift and its forecasts from its origin
        for the live WAPE.
        """
        cfg = context.settings.monitor
        data, day, reference_end = context.data, context.day, context.reference_end
        horizon = DemandSettings.of(context.settings).horizon
        everything = in_window(
            context.logged(cfg.window_days + horizon), day, cfg.window_days
        )
        logged = of_version(everything, context.version)
        source = "inference_log" if not logged.empty else "replay"
        # The champion's, each target day forecast once per model and rows.
        champion = (
            str(context.settings.home),
            context.version,
            tuple(sorted(context.tags.items())),
        )
        current_rows = (
            logged
            if source == "inference_log"
            else remembered_one_day_ahead(
                context.model, champion, data, day, cfg.window_days
            )
        )
        reference_rows = remembered_one_day_ahead(
            context.model, champion, data, reference_end, cfg.reference_days
        )
        reference, current = prediction_samples(
            reference_rows, current_rows, data, reference_end, cfg
        )
        verdict = context.detect(reference, current, ["forecast_index"], [])
        measured = performance(logged, data, day, cfg.window_days)
        if measured is not None:
            measured["source"] = "inference_log"
        else:
            replayed = replayed_forecasts(context.model(), data, day)
            measured = performance(replayed, data, day, cfg.window_days)
            if measured is not None:
                measured["source"] = "champion forecasts from its origin"
        backtest = context.tags.get(f"metric.{PRIMARY_METRIC}")
        if measured is not None and backtest:
            measured["backtest"] = float(backtest)
            measured["ratio"] = measured["value"] / max(float(backtest), 1e-9)
        return {
            "challengers": challenger_performance(
                everything, context.version, data, day, cfg.window_days
            ),
            "prediction_drift": {
                **verdict["columns"]["forecast_index"],
                "source": source,
            },
            "performance": measured,
        }
