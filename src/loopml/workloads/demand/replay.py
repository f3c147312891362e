"""New demand days for ``loopml replay``: the generator, extended.

The generator is prefix-stable (a longer world starts with exactly the same
days), so the days after the history are the generated world made longer;
``replay --drift-from K`` drifts replay days K and later (level x1.6, the
weekly pattern shifted by three days). Each day the champion forecasts the
next day from that day's state, as a daily job would, and the forecasts go
to the inference log, so the monitor's live WAPE judges served forecasts.
Only the generated dataset can be replayed: real data has no days after its
end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.sdk.capabilities import DaySource
from loopml.workloads.demand import data as demand_data
from loopml.workloads.demand.batch import series_state
from loopml.workloads.demand.config import DemandSettings
from loopml.workloads.demand.features import KEYS

if TYPE_CHECKING:
    from loopml.core.config import Settings
    from loopml.workloads.demand.pyfunc import DemandForecastModel


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
        ``plan``'s keys (as text), ``date`` (ISO text), planned inputs,
        ``horizon``, ``origin`` and ``forecast``, in the inference log's
        columns.
    """
    state = series_state(data, day)
    rows = plan[[*KEYS, "date", "price", "promo", "holiday"]].reset_index(drop=True)
    values = model.forecast(rows, state=state, origin=day)
    target = pd.to_datetime(rows["date"])
    return rows.assign(
        store_id=rows["store_id"].astype(str),
        item_id=rows["item_id"].astype(str),
        date=target.dt.strftime("%Y-%m-%d"),
        horizon=(target - day).dt.days.astype("int64"),
        forecast=values,
        origin=day.strftime("%Y-%m-%d"),
        features="replay",
    )


class DemandDaySource(DaySource):
    """The generated world after the history, drifted on demand."""

    can_drift = True

    def check(self, settings: Settings) -> None:
        """Refuse a real dataset: it has no days after its end.

        Raises:
            ValueError: naming the configured dataset.
        """
        dataset = DemandSettings.of(settings).dataset
        if dataset != "generated":
            raise ValueError(
                f"only the generated demand dataset can be replayed, not "
                f"{dataset!r}: real data has no days after its end"
            )

    def days(
        self,
        settings: Settings,
        first: pd.Timestamp,
        n_days: int,
        drift_from: int | None = None,
    ) -> pd.DataFrame:
        """The generated days ``first .. first + n_days - 1``.

        Raises:
            ValueError: for a real dataset.
        """
        self.check(settings)
        cfg = DemandSettings.of(settings)
        first_index = (pd.Timestamp(first) - pd.Timestamp(cfg.start)).days
        world = demand_data.generate(
            n_stores=cfg.n_stores,
            n_items=cfg.n_items,
            n_days=first_index + n_days,
            start=cfg.start,
            seed=settings.seed,
            drift_from_day=None if drift_from is None else first_index + drift_from - 1,
        )
        return world[world["date"] >= pd.Timestamp(first)].reset_index(drop=True)

    def daily_predictions(
        self,
        model: Any,
        data: pd.DataFrame,
        next_rows: pd.DataFrame,
        day: pd.Timestamp,
    ) -> pd.DataFrame | None:
        """The champion's forecasts of the next day's rows, made from ``day``."""
        if next_rows.empty:
            return None
        return next_day_forecasts(model, data, next_rows, day)
