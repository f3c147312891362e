"""What ``loopml monitor`` watches for demand, and how it measures it.

**Drift columns.** Pooled raw sales are a mixture of series whose levels
differ by two orders of magnitude, moved by seasons and holidays: measured
on the generator, a week's pooled sales moved by up to 0.64 reference SDs
with no drift at all, more than a real x1.5 level shift moved them
(docs/monitoring.md). So the columns are made comparable first:

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
training data (up to its forecast origin); **current**: the last
``monitor.window_days`` days up to the monitored day.

**Performance.** Logged forecasts (inference log: the API, batch jobs, the
replay) whose target date has an actual by now: WAPE and bias.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.workloads.demand.features import KEYS, origin_state

if TYPE_CHECKING:
    from loopml.config import MonitorSettings
    from loopml.workloads.demand.pyfunc import DemandForecastModel

NUMERICAL = ["sales_index", "price", "promo"]
CATEGORICAL: list[str] = []
#: the logged column holding the model's output.
PREDICTION = "forecast"
PRIMARY_METRIC = "wape"


def _window(data: pd.DataFrame, end: pd.Timestamp, days: int) -> pd.DataFrame:
    start = end - pd.Timedelta(days=days)
    return data[(data["date"] > start) & (data["date"] <= end)]


def samples(
    data: pd.DataFrame,
    reference_end: pd.Timestamp,
    day: pd.Timestamp,
    cfg: MonitorSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current samples of the drift columns.

    Args:
        data: the validated table.
        reference_end: the last day of the champion's training data.
        day: the monitored day (the current window ends there).
        cfg: window and reference lengths.

    Returns:
        ``(reference, current)``, one row per series and day, with
        :data:`NUMERICAL` columns (``sales_index`` NaN on promotion and
        holiday days).
    """
    reference = _window(data, reference_end, cfg.reference_days)
    current = _window(data, day, cfg.window_days)
    regular = reference[(reference["promo"] == 0) & (reference["holiday"] == 0)]
    levels = (
        regular.assign(dow=regular["date"].dt.dayofweek)
        .groupby([*KEYS, "dow"], observed=True)["sales"]
        .mean()
        .rename("level")
        .reset_index()
    )

    def indexed(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.assign(dow=frame["date"].dt.dayofweek).merge(
            levels, on=[*KEYS, "dow"], how="left"
        )
        is_regular = (out["promo"] == 0) & (out["holiday"] == 0)
        # A floor of one sale keeps near-empty series from exploding the index.
        index = out["sales"] / out["level"].clip(lower=1.0)
        out["sales_index"] = index.where(is_regular)
        out["promo"] = out["promo"].astype(float)
        return out[NUMERICAL]

    return indexed(reference), indexed(current)


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


def next_day_forecasts(
    model: DemandForecastModel,
    data: pd.DataFrame,
    plan: pd.DataFrame,
    day: pd.Timestamp,
) -> pd.DataFrame:
    """Forecast ``plan``'s rows (the next day) from every series' state at ``day``.

    What a daily batch would do: the state comes from the validated data
    (as the online store has it after ``loopml features``), the plan holds
    the target day's keys and planned ``price, promo, holiday``.

    Returns:
        ``plan``'s keys, ``date`` (ISO text), planned inputs, ``horizon``,
        ``origin`` and ``forecast``, in the inference log's columns.
    """
    state = origin_state(data, day)
    last = data[data["date"] == day][[*KEYS, "price"]]
    state = state.merge(
        last.rename(columns={"price": "last_price"}), on=KEYS, how="left"
    )
    rows = plan[[*KEYS, "date", "price", "promo", "holiday"]].reset_index(drop=True)
    values = model.forecast(rows, state=state, origin=day)
    target = pd.to_datetime(rows["date"])
    return rows.assign(
        date=target.dt.strftime("%Y-%m-%d"),
        horizon=(target - day).dt.days.astype("int64"),
        forecast=values,
        origin=day.strftime("%Y-%m-%d"),
        features="replay",
    )
