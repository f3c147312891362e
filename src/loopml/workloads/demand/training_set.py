"""Point-in-time training sets, built only through ``get_historical_features``.

Guard: Feast's file offline store (0.67) silently drops an entity row whose
entity has feature rows, none of them inside ``[ts - ttl, ts]``, and collapses
rows sharing key and timestamp. :func:`point_in_time` therefore queries unique
(key, timestamp) pairs carrying a row id and left-joins the answer back, so
the result has exactly the caller's rows (missing features are NaN), and
:func:`training_examples` refuses to lose a label row: every origin state the
labels imply must come back from the store, stamped with that very origin.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from feast.errors import FeatureViewNotFoundException

from loopml.sdk.feast import MissingFeaturesError, point_in_time
from loopml.workloads.demand.feature_views import (
    JOIN_KEY,
    STATE_FEATURES,
    STATE_VIEW,
    TIMESTAMP,
    series_ids,
)
from loopml.workloads.demand.features import (
    FEATURE_COLUMNS,
    HISTORY_DAYS,
    KEYS,
    build_features,
)

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)


def _eligible(df: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
    """(series, origin) pairs with all 28 days of sales up to the origin."""
    first = pd.Timestamp(df["date"].min())
    n_days = (pd.Timestamp(df["date"].max()) - first).days + 1
    grouped = df.groupby(KEYS, sort=True, observed=True)
    keys = grouped.size().index.to_frame(index=False)[KEYS].astype(object)
    observed = np.zeros((len(keys), n_days + 1))
    day = (df["date"] - first).dt.days.to_numpy()
    observed[grouped.ngroup().to_numpy(), day + 1] = df["sales"].notna()
    counts = observed.cumsum(axis=1)
    o_idx = (origins - first).days.to_numpy()
    window = counts[:, o_idx + 1] - counts[:, np.maximum(o_idx + 1 - HISTORY_DAYS, 0)]
    ok = (window == HISTORY_DAYS) & (o_idx >= HISTORY_DAYS - 1)
    rows, cols = np.nonzero(ok.T)
    pairs = keys.iloc[cols].reset_index(drop=True)
    pairs["origin"] = origins[rows]
    return pairs


def training_examples(
    store: FeatureStore,
    df: pd.DataFrame,
    horizon: int = 28,
    origin_step: int = 7,
    min_history: int = 28,
    last_origin: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """``features.build_training_examples``, with origin states from Feast.

    Labels and target-date attributes (price, promo, holiday: request data)
    come from ``df``; every origin-state feature comes from the offline store
    by a point-in-time join at the origin.

    Args:
        store: a store whose offline table was written from (at least) ``df``.
        df: canonical raw table.
        horizon: longest horizon in days.
        origin_step: days between consecutive origins.
        min_history: days of data before the first origin.
        last_origin: latest origin; default ``last date - horizon``.

    Returns:
        The same frame as ``build_training_examples`` with the same arguments.

    Raises:
        MissingFeaturesError: when the store lacks the state of a labelled
            (series, origin), instead of dropping its rows.
        ValueError: when the data is too short for a single origin.
    """
    df = df.sort_values([*KEYS, "date"], ignore_index=True)
    first, last = pd.Timestamp(df["date"].min()), pd.Timestamp(df["date"].max())
    if last_origin is None:
        last_origin = last - pd.Timedelta(days=horizon)
    origins = pd.date_range(
        first + pd.Timedelta(days=min_history), last_origin, freq=f"{origin_step}D"
    )
    # An origin on or after the last day has no target to label.
    pairs = _eligible(df, origins[origins < last])
    if pairs.empty:
        raise ValueError(
            f"no origin with {HISTORY_DAYS} days of history before {last_origin}"
        )
    pairs[JOIN_KEY] = series_ids(pairs["store_id"], pairs["item_id"])
    pairs[TIMESTAMP] = pairs["origin"].dt.tz_localize("UTC")
    refs = [f"{STATE_VIEW}:{name}" for name in ["origin", *STATE_FEATURES]]
    per_series = len(df) // max(len(pairs[JOIN_KEY].unique()), 1)
    try:
        state = point_in_time(
            store, pairs.drop(columns="origin"), refs, [JOIN_KEY], per_series
        )
    except FeatureViewNotFoundException as exc:
        raise MissingFeaturesError(
            f"{exc}: the feature store has not been built for this home; "
            "run `loopml features` (part of `loopml run`) before training"
        ) from exc
    stamped = pd.to_datetime(state["origin"], utc=True)
    missing = stamped.isna() | (stamped != state[TIMESTAMP])
    if missing.any():
        shown = state.loc[missing, [JOIN_KEY, TIMESTAMP]].head(5).to_dict("records")
        raise MissingFeaturesError(
            f"{int(missing.sum())} of {len(state)} (series, origin) states are "
            f"missing from the offline store, e.g. {shown}; run `loopml features` "
            "on this data so no label row is lost"
        )
    state["origin"] = stamped.dt.tz_localize(None).astype("datetime64[ns]")
    parts = []
    targets = df.assign(date=df["date"].astype("datetime64[ns]"))
    for origin, at_origin in state.groupby("origin", sort=True):
        window = targets[
            (targets["date"] > origin)
            & (targets["date"] <= origin + pd.Timedelta(days=horizon))
            & targets["sales"].notna()
        ]
        labelled = window.merge(at_origin[KEYS], on=KEYS, how="inner")
        parts.append(build_features(at_origin, labelled, pd.Timestamp(origin)))
    examples = pd.concat(parts, ignore_index=True)
    for key in KEYS:
        examples[key] = examples[key].astype(str).astype("category")
    log.info("built %d training examples from %d origins", len(examples), len(parts))
    return examples[[*FEATURE_COLUMNS, "sales", "origin", "date"]]
