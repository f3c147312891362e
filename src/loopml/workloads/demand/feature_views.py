"""Demand features in Feast: the entity, the feature views and their table.

The origin state of :func:`features.origin_state` is stored once per series
and day: the row stamped ``d`` holds the state computed from sales up to and
including ``d``, so a point-in-time join at entity time ``t`` returns exactly
``origin_state(df, t)`` (never a later day's sales). Target-date attributes
(calendar, planned price, promo, holiday) are request data: callers send them,
so they travel in the entity rows, not in a feature view.

Entity: ``series`` with the single join key ``series_id = "<store>:<item>"``.
Feast entities hold one join key, and one string key costs one online lookup
per series instead of a two-entity view.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.sdk.capabilities import FeatureViews
from loopml.sdk.feast import batch_source
from loopml.workloads.demand.features import HIST_COLUMNS, HISTORY_DAYS, KEYS, LAGS

if TYPE_CHECKING:
    from loopml.core.config import Settings

ENTITY = "series"
JOIN_KEY = "series_id"
TIMESTAMP = "event_timestamp"
STATE_VIEW = "demand_series_state"
PRICE_VIEW = "demand_series_price"
TODAY_VIEW = "demand_sales_today"
PUSH_SOURCE = "demand_sales_push"
STATE_TABLE = "demand_series_state.parquet"
#: Origin-state columns in the order ``origin_state`` returns them.
STATE_FEATURES: list[str] = [f"lag_{k}" for k in LAGS]
STATE_FEATURES += ["rmean_7", "rmean_28", "rstd_28", "price_mean_28", *HIST_COLUMNS]
#: Views loaded into the online store by batch materialization.
MATERIALIZED_VIEWS: tuple[str, ...] = (STATE_VIEW, PRICE_VIEW, TODAY_VIEW)
STATE_TTL = timedelta(days=7)
PRICE_TTL = timedelta(days=90)
TODAY_TTL = timedelta(days=2)


def series_ids(store_id: pd.Series, item_id: pd.Series) -> pd.Series:
    """Join store and item ids into the entity key ``"<store>:<item>"``."""
    return store_id.astype(str) + ":" + item_id.astype(str)


def state_history(df: pd.DataFrame) -> pd.DataFrame:
    """The origin state of every series on every day, in one vectorised pass.

    Args:
        df: canonical raw table (``date, store_id, item_id, sales, price, ...``).

    Returns:
        One row per series and day ``d`` having the 28 days ``d-27..d`` of
        sales: ``series_id``, ``event_timestamp`` (``d`` at 00:00 UTC),
        ``origin`` (``d``, naive), :data:`STATE_FEATURES` (equal to
        ``origin_state(df, d)``), ``last_price`` (price on ``d``) and
        ``sales_today`` (sales on ``d``, the batch value of the push view).
    """
    first = pd.Timestamp(df["date"].min())
    n_days = max((pd.Timestamp(df["date"].max()) - first).days + 1, HISTORY_DAYS)
    grouped = df.groupby(KEYS, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy()
    keys = grouped.size().index.to_frame(index=False)
    day = (df["date"] - first).dt.days.to_numpy()
    sales = np.full((len(keys), n_days), np.nan)
    price = np.full((len(keys), n_days), np.nan)
    sales[codes, day] = df["sales"].to_numpy(dtype=np.float64)
    price[codes, day] = df["price"].to_numpy(dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view
    # (series, window, k) with k days back from the window's last day; the
    # contiguous copy below has the layout ``_state_at`` reduces over, so the
    # float sums (and thus every feature) are bit-identical to origin_state.
    hist = windows(sales, HISTORY_DAYS, axis=1)[:, :, ::-1]
    series, start = np.nonzero(~np.isnan(hist).any(axis=2))
    hist = np.ascontiguousarray(hist[series, start])
    end = start + HISTORY_DAYS - 1
    origin = pd.DatetimeIndex(first + pd.to_timedelta(end, unit="D"))
    columns: dict[str, Any] = {
        JOIN_KEY: series_ids(keys["store_id"], keys["item_id"]).to_numpy()[series],
        TIMESTAMP: origin.tz_localize("UTC"),
        "origin": origin.astype("datetime64[ns]"),
    }
    columns.update({f"lag_{k}": hist[:, k] for k in LAGS})
    columns["rmean_7"] = hist[:, :7].mean(axis=1)
    columns["rmean_28"] = hist.mean(axis=1)
    columns["rstd_28"] = hist.std(axis=1, ddof=1)
    columns["price_mean_28"] = np.nanmean(
        windows(price, HISTORY_DAYS, axis=1)[series, start], axis=1
    )
    columns.update({name: hist[:, k] for k, name in enumerate(HIST_COLUMNS)})
    columns["last_price"] = price[series, end]
    columns["sales_today"] = hist[:, 0]
    return pd.DataFrame(columns)


def offline_tables(
    validated: pd.DataFrame, settings: Settings | None = None
) -> dict[str, pd.DataFrame]:
    """The parquet tables behind the batch sources, by file name (no setting
    changes them)."""
    return {STATE_TABLE: state_history(validated)}


def feast_objects(data_dir: Path, settings: Settings | None = None) -> list[Any]:
    """The Feast entity, sources and feature views of the demand workload.

    Args:
        data_dir: the folder holding the tables of :func:`offline_tables`.
        settings: the offline store's kind (file or PostgreSQL source);
            None: file sources.

    Returns:
        Objects to pass to ``FeatureStore.apply``.
    """
    # Imported here: Feast takes seconds to import, the state code needs none.
    from feast import Entity, FeatureView, Field, PushSource, ValueType
    from feast.types import Float64, UnixTimestamp

    series = Entity(
        name=ENTITY,
        join_keys=[JOIN_KEY],
        value_type=ValueType.STRING,
        description="one demand series: a store x item pair, '<store>:<item>'",
    )
    source = batch_source("demand_series_state_source", STATE_TABLE, data_dir, settings)
    state = FeatureView(
        name=STATE_VIEW,
        entities=[series],
        ttl=STATE_TTL,
        schema=[
            Field(name="origin", dtype=UnixTimestamp),
            *(Field(name=name, dtype=Float64) for name in STATE_FEATURES),
        ],
        source=source,
        description="origin state (lags, rolling stats, 28-day history) per day",
    )
    price = FeatureView(
        name=PRICE_VIEW,
        entities=[series],
        ttl=PRICE_TTL,
        schema=[Field(name="last_price", dtype=Float64)],
        source=source,
        description="the last known price, the default for a request without one",
    )
    push = PushSource(name=PUSH_SOURCE, batch_source=source)
    today = FeatureView(
        name=TODAY_VIEW,
        entities=[series],
        ttl=TODAY_TTL,
        schema=[Field(name="sales_today", dtype=Float64)],
        source=push,
        description="sales of the event's day so far; pushed during the day",
    )
    return [series, source, push, state, price, today]


def _utc_stamp(at: pd.Timestamp) -> pd.Timestamp:
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")


class DemandFeatureViews(FeatureViews):
    """The demand views (series state, price, today's sales) as a capability."""

    materialized = MATERIALIZED_VIEWS
    training = (STATE_VIEW,)
    push_source = PUSH_SOURCE

    def offline_tables(
        self, validated: pd.DataFrame, settings: Settings
    ) -> dict[str, pd.DataFrame]:
        """See :func:`offline_tables`."""
        return offline_tables(validated, settings)

    def objects(self, data_dir: Path, settings: Settings) -> list[Any]:
        """See :func:`feast_objects`."""
        return feast_objects(data_dir, settings)

    def push_row(self, fields: Mapping[str, str], at: pd.Timestamp) -> pd.DataFrame:
        """Today's sales so far of one series: ``store_id``, ``item_id``, ``sales``.

        Raises:
            ValueError: a missing or unknown field, or sales that are not a
                finite number >= 0.
        """
        missing = [k for k in ("store_id", "item_id", "sales") if not fields.get(k)]
        if missing:
            raise ValueError(f"demand push needs {', '.join(missing)}")
        unknown = sorted(set(fields) - {"store_id", "item_id", "sales"})
        if unknown:
            raise ValueError(
                f"demand push takes store_id, item_id and sales; unknown {unknown}"
            )
        try:
            sales = float(fields["sales"])
        except ValueError:
            raise ValueError(
                f"sales must be a number, got {fields['sales']!r}"
            ) from None
        if not 0 <= sales < float("inf"):
            raise ValueError(f"sales must be a finite number >= 0, got {sales}")
        return pd.DataFrame(
            {
                JOIN_KEY: [f"{fields['store_id']}:{fields['item_id']}"],
                TIMESTAMP: [_utc_stamp(at)],
                "sales_today": [sales],
            }
        )
