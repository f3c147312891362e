"""What the models know about the history up to a cutoff, and ranking features.

:func:`build_context` summarises the interactions before a cutoff once
(indexes, seen items, per-user category counts, windowed popularity per
segment); :func:`build_features` then gathers the features of any number of
(user, candidate item) pairs with array indexing, no per-user Python loop.
Arrays over users have one extra last row for users unknown at fit time;
arrays over segments one extra last row meaning "no known segment" (global).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from loopml.workloads.recsys.sparse import csr_values

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FEATURE_COLUMNS: list[str] = [
    "als_score",
    "user_category_share",
    "user_category_count",
    "level_step",
    "seniority_level_gap",
    "role_relevant",
    "segment_popularity",
    "global_popularity",
    "recent_popularity",
    "popularity_all_time",
    "item_age_days",
    "days_since_last_interaction",
    "user_history_length",
    "seniority",
    "level",
    "duration_hours",
]
RECENT_DAYS = 14
#: Features of each user's own moment, from the history in memory (like the
#: ALS score, never from the feature store): how long ago the user was last
#: active, how old the item was then, and how popular in the RECENT_DAYS up
#: to then.
TIME_COLUMNS: list[str] = ["user_idle_days", "item_age_then", "local_popularity"]


@dataclass(frozen=True)
class FeatureContext:
    """The history before ``cutoff``, indexed for fast gathering."""

    cutoff: pd.Timestamp
    user_ids: pd.Index
    item_ids: pd.Index
    segments: pd.Index
    #: (users + 1) x items summed interaction weights; the last row is empty.
    weights: sp.csr_matrix
    user_segment: IntArray
    user_seniority: FloatArray
    user_length: FloatArray
    user_category_count: FloatArray
    user_category_level: FloatArray
    item_category: IntArray
    item_level: FloatArray
    item_duration: FloatArray
    item_age: FloatArray
    item_idle: FloatArray
    item_available: npt.NDArray[np.bool_]
    segment_popularity: FloatArray
    recent_popularity: FloatArray
    popularity_all_time: FloatArray
    role_relevant: FloatArray
    #: days from each user's last interaction to the cutoff (NaN: none).
    user_idle: FloatArray
    #: each user's last active day (the cutoff's day without history).
    user_day: IntArray
    #: days x items: each item's share of the first interactions (user, item)
    #: in the RECENT_DAYS up to that day.
    local_popularity: sp.csr_matrix

    def user_rows(self, user_ids: list[str]) -> IntArray:
        """Row of each user; unknown users get the last (empty) row."""
        if len(user_ids) == 1:  # one user served live: no index to build
            try:
                row = self.user_ids.get_loc(user_ids[0])
            except KeyError:
                row = len(self.user_ids)
            if isinstance(row, int):
                return np.array([row], dtype=np.int64)
        rows = self.user_ids.get_indexer(pd.Index(user_ids, dtype=object))
        return np.where(rows < 0, len(self.user_ids), rows).astype(np.int64)

    def segment_rows(self, segments: list[str | None]) -> IntArray:
        """Row of each segment name; ``None`` or unknown gets the global row."""
        names = pd.Index(["" if s is None else s for s in segments], dtype=object)
        rows = self.segments.get_indexer(names)
        return np.where(rows < 0, len(self.segments), rows).astype(np.int64)


def _popularity(
    pairs: pd.DataFrame, n_segments: int, n_items: int, since: pd.Timestamp
) -> FloatArray:
    """Share of each segment's active users (since ``since``) per item.

    The last row is the global share over every active user.
    """
    recent = pairs[pairs["last"] > since]
    rows = np.concatenate([recent["segment"], np.full(len(recent), n_segments)])
    users = np.concatenate([recent["user"], recent["user"]])
    items = np.concatenate([recent["item"], recent["item"]])
    counts = np.zeros((n_segments + 1, n_items))
    np.add.at(counts, (rows, items), 1.0)
    active = pd.DataFrame({"row": rows, "user": users}).drop_duplicates()
    n_active = np.bincount(active["row"], minlength=n_segments + 1)
    return counts / np.maximum(n_active, 1)[:, None]


def build_context(
    history: pd.DataFrame,
    users: pd.DataFrame,
    items: pd.DataFrame,
    window_days: int,
    cutoff: pd.Timestamp | None = None,
) -> FeatureContext:
    """Summarise the interactions up to ``cutoff`` for models and features.

    Args:
        history: canonical interactions, all before or at ``cutoff``.
        users: the users table (users without history are indexed too).
        items: the items table; the catalogue is every item created by the
            cutoff plus every item in ``history``.
        window_days: the "recent" window of segment and global popularity.
        cutoff: the moment the features describe; the last interaction when
            ``None``.

    Returns:
        The indexed history.

    Raises:
        ValueError: when there is no interaction to learn from.
    """
    if history.empty:
        raise ValueError("no interactions to fit on")
    cutoff = pd.Timestamp(cutoff if cutoff is not None else history["timestamp"].max())
    available = items[items["created"] <= cutoff]["item_id"]
    item_ids = pd.Index(sorted(set(available) | set(history["item_id"])), dtype=object)
    user_ids = pd.Index(sorted(set(users["user_id"]) | set(history["user_id"])))
    attrs = items.set_index("item_id").reindex(item_ids)
    person = users.set_index("user_id").reindex(user_ids)
    segments = pd.Index(sorted(person["segment"].dropna().unique()), dtype=object)
    n_users, n_items, n_segments = len(user_ids), len(item_ids), len(segments)

    user_segment = np.append(segments.get_indexer(person["segment"]), -1)
    user_segment = np.where(user_segment < 0, n_segments, user_segment)
    categories = pd.Index(sorted(attrs["category"].fillna("unknown").unique()))
    item_category = categories.get_indexer(attrs["category"].fillna("unknown"))
    level = attrs["level"].fillna(0).to_numpy(dtype=float)

    pairs = (
        history.assign(
            user=user_ids.get_indexer(history["user_id"]),
            item=item_ids.get_indexer(history["item_id"]),
        )
        .groupby(["user", "item"], as_index=False)
        .agg(
            weight=("weight", "sum"),
            first=("timestamp", "min"),
            last=("timestamp", "max"),
        )
    )
    pairs["segment"] = user_segment[pairs["user"].to_numpy()]
    user, item = pairs["user"].to_numpy(), pairs["item"].to_numpy()
    weights = sp.csr_matrix(
        (pairs["weight"].to_numpy(dtype=float), (user, item)),
        shape=(n_users + 1, n_items),
    )
    cat_count = np.zeros((n_users + 1, len(categories)))
    np.add.at(cat_count, (user, item_category[item]), 1.0)
    cat_level = np.zeros((n_users + 1, len(categories)))
    np.maximum.at(cat_level, (user, item_category[item]), level[item])
    last_seen = pairs.groupby("item")["last"].max().reindex(range(n_items))
    created = attrs["created"].fillna(history["timestamp"].min())

    roles = attrs["roles"].fillna("").str.split(",").explode()
    roles = roles[roles.isin(segments)]
    role_relevant = np.zeros((n_segments + 1, n_items))
    role_relevant[segments.get_indexer(roles), item_ids.get_indexer(roles.index)] = 1.0

    days = pd.Timedelta(days=1)
    user_last = pairs.groupby("user")["last"].max().reindex(range(n_users + 1))
    day_zero = pairs["first"].min().normalize()
    n_days = (cutoff.normalize() - day_zero).days + 1
    # Users without history: the cutoff's day.
    user_day = ((user_last.dt.normalize() - day_zero) / days).fillna(n_days - 1)
    return FeatureContext(
        cutoff=cutoff,
        user_ids=user_ids,
        item_ids=item_ids,
        segments=segments,
        weights=weights,
        user_segment=user_segment.astype(np.int64),
        user_seniority=np.append(
            person["seniority"].where(person["seniority"] >= 0).to_numpy(float), np.nan
        ),
        user_length=cat_count.sum(axis=1),
        user_category_count=cat_count,
        user_category_level=cat_level,
        item_category=item_category.astype(np.int64),
        item_level=np.where(level > 0, level, np.nan),
        item_duration=attrs["duration_hours"].fillna(0).to_numpy(dtype=float),
        item_age=((cutoff - created) / days).to_numpy(dtype=float),
        item_idle=((cutoff - last_seen) / days).to_numpy(dtype=float),
        item_available=(created <= cutoff).to_numpy(),
        segment_popularity=_popularity(
            pairs, n_segments, n_items, cutoff - window_days * days
        ),
        recent_popularity=_popularity(
            pairs, n_segments, n_items, cutoff - RECENT_DAYS * days
        )[-1],
        popularity_all_time=np.log1p(np.bincount(item, minlength=n_items)).astype(
            float
        ),
        role_relevant=role_relevant,
        user_idle=((cutoff - user_last) / days).to_numpy(dtype=float),
        user_day=user_day.to_numpy(dtype=np.int64),
        local_popularity=_local_popularity(pairs, n_items, day_zero, n_days),
    )


def _local_popularity(
    pairs: pd.DataFrame, n_items: int, day_zero: pd.Timestamp, n_days: int
) -> sp.csr_matrix:
    """Days x items: share of the first interactions of the RECENT_DAYS to a day."""
    first_day = ((pairs["first"].dt.normalize() - day_zero).dt.days).to_numpy()
    daily = sp.csr_matrix(
        (np.ones(len(pairs)), (first_day, pairs["item"].to_numpy())),
        shape=(n_days, n_items),
    )
    # A band of ones sums each day with the RECENT_DAYS - 1 before it.
    width = min(RECENT_DAYS, n_days)
    band = sp.diags(
        [np.ones(n_days)] * width,
        offsets=list(range(-width + 1, 1)),
        shape=(n_days, n_days),
        dtype=float,
    )
    window = sp.csr_matrix(band @ daily)
    totals = np.asarray(window.sum(axis=1), dtype=float).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(totals, 1.0)) @ window)


def time_matrix(
    context: FeatureContext, user_rows: IntArray, items: IntArray
) -> FloatArray:
    """The :data:`TIME_COLUMNS` of (user, item) pairs as a float matrix."""
    out = np.empty((len(items), len(TIME_COLUMNS)))
    idle = context.user_idle[user_rows]
    age = context.item_age[items]
    out[:, 0] = idle
    out[:, 1] = np.where(np.isnan(idle), age, age - idle)
    if len(items):
        days = context.user_day[user_rows]
        out[:, 2] = csr_values(context.local_popularity, days, items)
    return out


def time_features(
    context: FeatureContext, user_rows: IntArray, items: IntArray
) -> pd.DataFrame:
    """The :data:`TIME_COLUMNS` of (user, item) pairs (see ``build_features``)."""
    return pd.DataFrame(time_matrix(context, user_rows, items), columns=TIME_COLUMNS)


def pair_matrix(
    context: FeatureContext,
    user_rows: IntArray,
    segment_rows: IntArray,
    items: IntArray,
    als_score: FloatArray,
) -> FloatArray:
    """The ranking features of (user, item) pairs as a float matrix.

    The serving path's form of :func:`build_features` (which wraps it): one
    row per pair, :data:`FEATURE_COLUMNS` in order, no frame.
    """
    category = context.item_category[items]
    count = context.user_category_count[user_rows, category]
    length = context.user_length[user_rows]
    top_level = context.user_category_level[user_rows, category]
    level = context.item_level[items]
    seniority = context.user_seniority[user_rows]
    columns = (
        als_score,  # als_score
        count / np.maximum(length, 1.0),  # user_category_share
        count,  # user_category_count
        np.where(top_level > 0, level - top_level, np.nan),  # level_step
        level - (1.0 + seniority / 2.0),  # seniority_level_gap
        context.role_relevant[segment_rows, items],  # role_relevant
        context.segment_popularity[segment_rows, items],  # segment_popularity
        context.segment_popularity[-1, items],  # global_popularity
        context.recent_popularity[items],  # recent_popularity
        context.popularity_all_time[items],  # popularity_all_time
        context.item_age[items],  # item_age_days
        context.item_idle[items],  # days_since_last_interaction
        length,  # user_history_length
        seniority,  # seniority
        level,  # level
        context.item_duration[items],  # duration_hours
    )
    out = np.empty((len(items), len(FEATURE_COLUMNS)))
    for index, column in enumerate(columns):
        out[:, index] = column
    return out


def build_features(
    context: FeatureContext,
    user_rows: IntArray,
    segment_rows: IntArray,
    items: IntArray,
    als_score: FloatArray,
) -> pd.DataFrame:
    """Gather the ranking features of (user, item) pairs.

    Args:
        context: the history the features describe.
        user_rows: each pair's user row (see ``FeatureContext.user_rows``).
        segment_rows: each pair's segment row (the request may override it).
        items: each pair's item column in the context's catalogue.
        als_score: each pair's ALS score (NaN for users without factors).

    Returns:
        One row per pair, :data:`FEATURE_COLUMNS` in order.
    """
    return pd.DataFrame(
        pair_matrix(context, user_rows, segment_rows, items, als_score),
        columns=FEATURE_COLUMNS,
    )


#: What gathers the ranking features of pairs: :func:`build_features` or a
#: reader with the same signature and result (``feature_store.ranking``).
PairFeatures = Callable[
    [FeatureContext, IntArray, IntArray, IntArray, FloatArray], pd.DataFrame
]
