"""The daily demand batch: every series' forecasts over the horizon.

``loopml batch -w demand --date D`` writes, for every series with 28 days of
history at the origin, one row per target day ``origin + 1 .. origin +
horizon`` (the champion's horizon): ``store_id, item_id, target_date,
horizon, forecast``, to ``<home>/batch/demand/date=D.parquet`` and the SQL
table ``forecasts``.

**Origin.** The latest validated state a job running on day ``D`` has: the
day before ``D``, or the last validated day when that is earlier (the
default ``D`` is the day after it). The state is ``origin_state`` of the
validated data plus each series' price on the origin day, as the service
computes it from the online store.

**Plan of the target days.** The forecaster reads each target day's price,
promotion and holiday, which a retailer plans ahead; the validated data
holds none of the future. So the batch takes the service's defaults for a
row without a plan: the last price, no promotion, no holiday, and its
forecasts equal ``/v1/demand/predict``'s for the same rows. Only a target
day already in the validated data (a batch re-run for a past ``D``) has a
better value, its recorded price, promotion and holiday, which is used.
A planner's promotion calendar would be the next input to add.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from loopml.sdk.capabilities import BatchScorer, BatchWork
from loopml.workloads.demand.features import KEYS, origin_state

if TYPE_CHECKING:
    from loopml.core.config import Settings
    from loopml.workloads.demand.pyfunc import DemandForecastModel

PLAN_COLUMNS = ["price", "promo", "holiday"]


def batch_origin(data: pd.DataFrame, day: dt.date) -> pd.Timestamp:
    """The forecast origin of the batch for ``day`` (see the module's docstring)."""
    last = pd.Timestamp(data["date"].max()).normalize()
    return min(pd.Timestamp(day) - pd.Timedelta(days=1), last)


def series_state(data: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """``origin_state`` plus each series' price on the origin day (``last_price``)."""
    state = origin_state(data, origin)
    last = data[data["date"] == origin][[*KEYS, "price"]]
    return state.merge(
        last.rename(columns={"price": "last_price"}), on=KEYS, how="left"
    )


def plan(
    data: pd.DataFrame, state: pd.DataFrame, origin: pd.Timestamp, horizon: int
) -> pd.DataFrame:
    """Every series x target day with its planned price, promotion and holiday.

    Returns:
        ``store_id, item_id, date, price, promo, holiday``: the recorded values
        of target days in ``data``, else the last price, 0 and 0.
    """
    targets = pd.date_range(origin + pd.Timedelta(days=1), periods=horizon)
    keys = state[[*KEYS, "last_price"]]
    rows = keys.loc[keys.index.repeat(horizon)].reset_index(drop=True)
    rows["date"] = np.tile(targets.to_numpy(), len(keys))
    recorded = data[(data["date"] > origin) & (data["date"] <= targets[-1])]
    rows = rows.merge(
        recorded[[*KEYS, "date", *PLAN_COLUMNS]], on=[*KEYS, "date"], how="left"
    )
    rows["price"] = rows["price"].fillna(rows["last_price"])
    rows[["promo", "holiday"]] = rows[["promo", "holiday"]].fillna(0).astype("int64")
    return rows[[*KEYS, "date", *PLAN_COLUMNS]]


class DemandBatchScorer(BatchScorer):
    """The champion's forecast of every series for every day of its horizon."""

    table = "forecasts"
    schema: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("store_id", pa.string(), nullable=False),
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("target_date", pa.date32(), nullable=False),
            pa.field("horizon", pa.int32(), nullable=False),
            pa.field("forecast", pa.float64(), nullable=False),
        ]
    )
    key_columns = ("store_id", "item_id", "target_date")

    #: series forecast per block (times the horizon rows): bounds memory.
    block_rows = 10_000

    def work(
        self,
        model: DemandForecastModel,
        settings: Settings,
        data: pd.DataFrame,
        day: dt.date,
    ) -> BatchWork:
        """Each series' state at :func:`batch_origin`; every block shares the
        origin and the recorded target days (the plan)."""
        origin = batch_origin(data, day)
        last = origin + pd.Timedelta(days=model.horizon)
        recorded = data[(data["date"] > origin) & (data["date"] <= last)]
        return BatchWork(
            series_state(data, origin),
            shared=(origin, recorded[[*KEYS, "date", *PLAN_COLUMNS]]),
        )

    def score_block(
        self, model: DemandForecastModel, shared: Any, keys: pd.DataFrame
    ) -> pd.DataFrame:
        """Forecasts of the block's series over the horizon."""
        origin, recorded = shared
        part = keys.reset_index(drop=True)
        rows = plan(recorded, part, origin, model.horizon)
        values = model.forecast(rows, state=part, origin=origin)
        return pd.DataFrame(
            {
                "store_id": rows["store_id"].astype(str),
                "item_id": rows["item_id"].astype(str),
                "target_date": rows["date"].dt.date,
                "horizon": (rows["date"] - origin).dt.days.astype("int32"),
                "forecast": values,
            }
        )

    def count(self, model: Any, data: pd.DataFrame) -> int:
        """The series of the last validated day."""
        last = data[data["date"] == data["date"].max()]
        return len(last[KEYS].drop_duplicates())
