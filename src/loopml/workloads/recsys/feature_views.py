"""Recsys ranking features in Feast: entities, change-point tables and views.

The ranker's features describe the history up to a cutoff (an instant, the
last interaction before an inner split). Every table here is a change log:
a row stamped ``t`` holds a key's value computed from the interactions up to
and including ``t``, and a new row appears whenever that value changes. A
point-in-time join at ``c`` (latest row stamped ``<= c``) therefore returns
exactly what ``features.build_context`` computes at cutoff ``c``; what
depends on ``c`` itself (item age, days since the last interaction) is
derived at join time from stored timestamps (``feature_store/ranking.py``).

Windowed popularity counts users with an interaction in ``(c - W, c]``: a
user enters at an interaction and leaves at ``t + W`` (a row stamped then),
so a key without a row within the view's TTL (``W``) has a count of 0.
Cumulative counts and profiles never expire (TTL 0: no limit). Rows stamped
after the last interaction (future departures) are dropped: the online store
must not hold tomorrow's values.
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
from loopml.workloads.recsys.config import RecsysSettings
from loopml.workloads.recsys.features import RECENT_DAYS
from loopml.workloads.recsys.tables import RecsysData

if TYPE_CHECKING:
    from loopml.core.config import Settings

TIMESTAMP = "event_timestamp"
USER_KEY, ITEM_KEY, SEGMENT_KEY = "user_id", "item_id", "segment_id"
SEGMENT_ITEM_KEY, USER_CATEGORY_KEY = "segment_item_id", "user_category_id"
#: The segment key of popularity over every user.
ALL_USERS = "*"
SEPARATOR = "|"

USER_PROFILE_VIEW = "recsys_user_profile"
USER_HISTORY_VIEW = "recsys_user_history"
USER_CATEGORY_VIEW = "recsys_user_category"
ITEM_PROFILE_VIEW = "recsys_item_profile"
ITEM_ACTIVITY_VIEW = "recsys_item_activity"
SEGMENT_ITEM_VIEW = "recsys_segment_item_popularity"
SEGMENT_VIEW = "recsys_segment_activity"
TODAY_VIEW = "recsys_user_today"
PUSH_SOURCE = "recsys_interactions_push"
#: Views the ranker's training set reads (recorded with the MLflow run).
RANKING_VIEWS: tuple[str, ...] = (
    USER_PROFILE_VIEW,
    USER_HISTORY_VIEW,
    USER_CATEGORY_VIEW,
    ITEM_PROFILE_VIEW,
    ITEM_ACTIVITY_VIEW,
    SEGMENT_ITEM_VIEW,
    SEGMENT_VIEW,
)
MATERIALIZED_VIEWS: tuple[str, ...] = (*RANKING_VIEWS, TODAY_VIEW)
#: No TTL (Feast: 0): profiles and cumulative counts stay valid.
FOREVER = timedelta(0)
TODAY_TTL = timedelta(days=2)
#: The feature view tag holding the popularity window of its table.
WINDOW_TAG = "window_days"
DEFAULT_WINDOW_DAYS = 90


def pair_keys(left: pd.Series, right: pd.Series) -> pd.Series:
    """Join two ids into one entity key, ``"<left>|<right>"``."""
    return left.astype(str) + SEPARATOR + right.astype(str)


def _utc(values: pd.Series) -> pd.Series:
    return values.astype("datetime64[ns]").dt.tz_localize("UTC")


def _cumulative(
    keys: pd.Series, times: pd.Series, values: pd.Series, how: str
) -> pd.DataFrame:
    """Running ``sum`` or ``max`` of ``values`` per key, one row per change time."""
    frame = pd.DataFrame({"key": keys.to_numpy(), "time": times.to_numpy()})
    frame["value"] = values.to_numpy(dtype=np.float64)
    at = frame.groupby(["key", "time"], sort=True)["value"].agg(how).reset_index()
    running = at.groupby("key")["value"]
    at["value"] = running.cumsum() if how == "sum" else running.cummax()
    return at


def _window_counts(
    keys: pd.Series, members: pd.Series, times: pd.Series, window: pd.Timedelta
) -> pd.DataFrame:
    """Distinct members per key with an event in ``(c - window, c]``, as changes.

    A member enters at an event and leaves ``window`` after its last event
    unless another arrives first (at exactly ``window`` later it stays in:
    the leave and the enter share a stamp and cancel).
    """
    events = pd.DataFrame(
        {"key": keys.to_numpy(), "member": members.to_numpy(), "time": times.to_numpy()}
    ).drop_duplicates()
    events = events.sort_values(["key", "member", "time"], ignore_index=True)
    group = events["key"].ne(events["key"].shift()) | events["member"].ne(
        events["member"].shift()
    )
    gap = events["time"] - events["time"].shift()
    starts = group | (gap >= window)
    ends = starts.shift(-1, fill_value=True)
    deltas = pd.concat(
        [
            pd.DataFrame(
                {"key": events["key"][starts], "time": events["time"][starts]}
            ).assign(delta=1.0),
            pd.DataFrame(
                {"key": events["key"][ends], "time": events["time"][ends] + window}
            ).assign(delta=-1.0),
        ],
        ignore_index=True,
    )
    at = deltas.groupby(["key", "time"], sort=True)["delta"].sum().reset_index()
    at["count"] = at.groupby("key")["delta"].cumsum()
    return at[["key", "time", "count"]]


def _windows(
    keys: pd.Series, members: pd.Series, times: pd.Series, window_days: int
) -> pd.DataFrame:
    """Both windows' counts (``window`` and ``recent``) at each change of either."""
    wide = _window_counts(keys, members, times, pd.Timedelta(days=window_days))
    recent = _window_counts(keys, members, times, pd.Timedelta(days=RECENT_DAYS))
    both = wide.merge(recent, on=["key", "time"], how="outer", suffixes=("", "_r"))
    both = both.sort_values(["key", "time"], ignore_index=True)
    counts = both.groupby("key")[["count", "count_r"]].ffill().fillna(0.0)
    return pd.DataFrame(
        {"key": both["key"], "time": both["time"], "window": counts["count"]}
    ).assign(recent=counts["count_r"])


def _profiles(data: RecsysData, stamp: pd.Timestamp) -> dict[str, pd.DataFrame]:
    users, items = data.users, data.items
    first = data.interactions["timestamp"].min()
    user_profile = pd.DataFrame(
        {
            USER_KEY: users["user_id"].astype(str),
            TIMESTAMP: stamp,
            "segment": users["segment"].astype(str),
            "seniority": users["seniority"]
            .where(users["seniority"] >= 0)
            .astype(np.float64),
        }
    )
    item_profile = pd.DataFrame(
        {
            ITEM_KEY: items["item_id"].astype(str),
            TIMESTAMP: stamp,
            "category": items["category"].fillna("unknown").astype(str),
            "level": items["level"].fillna(0).astype(np.float64),
            "duration_hours": items["duration_hours"].fillna(0).astype(np.float64),
            "roles": items["roles"].fillna("").astype(str),
            "created": items["created"].fillna(first).astype("datetime64[ns]"),
        }
    )
    return {
        "recsys_user_profile.parquet": user_profile,
        "recsys_item_profile.parquet": item_profile,
    }


def feature_tables(data: RecsysData, window_days: int) -> dict[str, pd.DataFrame]:
    """Every change-point table of the ranking features, by file name.

    Args:
        data: users, items and interactions (the validated event log, split).
        window_days: the segment-popularity window of the ranker.

    Returns:
        Parquet tables with a join key, ``event_timestamp`` (UTC) and features.
    """
    history = data.interactions
    last = history["timestamp"].max()
    stamp = _utc(pd.Series([history["timestamp"].min().normalize()]))[0]
    tables = _profiles(data, stamp)
    items = data.items.set_index("item_id")
    pairs = history.groupby(["user_id", "item_id"], as_index=False).agg(
        first=("timestamp", "min")
    )
    pairs["category"] = (
        items["category"].reindex(pairs["item_id"]).fillna("unknown").to_numpy()
    )
    pairs["level"] = items["level"].reindex(pairs["item_id"]).fillna(0).to_numpy()
    ones = pd.Series(np.ones(len(pairs)))
    length = _cumulative(pairs["user_id"], pairs["first"], ones, "sum")
    tables["recsys_user_history.parquet"] = pd.DataFrame(
        {USER_KEY: length["key"], TIMESTAMP: _utc(length["time"])}
    ).assign(history_length=length["value"])
    user_category = pair_keys(pairs["user_id"], pairs["category"])
    count = _cumulative(user_category, pairs["first"], ones, "sum")
    level = _cumulative(user_category, pairs["first"], pairs["level"], "max")
    tables["recsys_user_category.parquet"] = pd.DataFrame(
        {USER_CATEGORY_KEY: count["key"], TIMESTAMP: _utc(count["time"])}
    ).assign(category_count=count["value"], category_top_level=level["value"])
    seen = _cumulative(pairs["item_id"], pairs["first"], ones, "sum")
    touched = history.groupby(["item_id", "timestamp"], as_index=False).size()
    activity = touched.merge(
        seen.rename(columns={"key": "item_id", "time": "timestamp"}),
        on=["item_id", "timestamp"],
        how="left",
    )
    activity["value"] = activity.groupby("item_id")["value"].ffill()
    tables["recsys_item_activity.parquet"] = pd.DataFrame(
        {
            ITEM_KEY: activity["item_id"].astype(str),
            TIMESTAMP: _utc(activity["timestamp"]),
            "last_interaction": activity["timestamp"].astype("datetime64[ns]"),
            "users_all_time": activity["value"].astype(np.float64),
        }
    )
    segment = data.users.set_index("user_id")["segment"].reindex(history["user_id"])
    both = pd.concat(
        [
            pd.DataFrame({"segment": segment.to_numpy(), **_columns(history)}),
            pd.DataFrame({"segment": ALL_USERS, **_columns(history)}),
        ],
        ignore_index=True,
    )
    popular = _windows(
        pair_keys(both["segment"], both["item_id"]),
        both["user_id"],
        both["timestamp"],
        window_days,
    )
    tables["recsys_segment_item_popularity.parquet"] = pd.DataFrame(
        {SEGMENT_ITEM_KEY: popular["key"], TIMESTAMP: _utc(popular["time"])}
    ).assign(window_users=popular["window"], recent_users=popular["recent"])
    active = _windows(both["segment"], both["user_id"], both["timestamp"], window_days)
    tables["recsys_segment_activity.parquet"] = pd.DataFrame(
        {SEGMENT_KEY: active["key"], TIMESTAMP: _utc(active["time"])}
    ).assign(window_active_users=active["window"], recent_active_users=active["recent"])
    tables["recsys_user_today.parquet"] = _today(history)
    cutoff = _utc(pd.Series([last]))[0]
    return {
        name: table[table[TIMESTAMP] <= cutoff].reset_index(drop=True)
        for name, table in tables.items()
    }


def _columns(history: pd.DataFrame) -> dict[str, Any]:
    return {
        "user_id": history["user_id"].to_numpy(),
        "item_id": history["item_id"].to_numpy(),
        "timestamp": history["timestamp"].to_numpy(),
    }


def _today(history: pd.DataFrame) -> pd.DataFrame:
    """Each user's interactions of the day so far, at each interaction."""
    ordered = history.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    day = ordered["timestamp"].dt.normalize()
    running = ordered.groupby([ordered["user_id"], day]).cumcount() + 1.0
    today = pd.DataFrame(
        {
            USER_KEY: ordered["user_id"].astype(str).to_numpy(),
            TIMESTAMP: _utc(ordered["timestamp"]).to_numpy(),
            "interactions_today": running.to_numpy(dtype=np.float64),
            "last_item_id": ordered["item_id"].astype(str).to_numpy(),
        }
    )
    return today.drop_duplicates([USER_KEY, TIMESTAMP], keep="last", ignore_index=True)


def _window_days(settings: Settings | None) -> int:
    return RecsysSettings.of(settings).window_days if settings else DEFAULT_WINDOW_DAYS


def offline_tables(
    validated: pd.DataFrame, settings: Settings | None = None
) -> dict[str, pd.DataFrame]:
    """The parquet tables behind the batch sources, by file name."""
    return feature_tables(RecsysData.from_frame(validated), _window_days(settings))


def feast_objects(data_dir: Path, settings: Settings | None = None) -> list[Any]:
    """The Feast entities, sources and feature views of the recsys workload.

    Args:
        data_dir: the folder holding the tables of :func:`offline_tables`.
        settings: gives the popularity window (``recsys.window_days``).

    Returns:
        Objects to pass to ``FeatureStore.apply``.
    """
    from feast import Entity, FeatureView, Field, PushSource, ValueType
    from feast.types import Float64, String, UnixTimestamp

    window = _window_days(settings)
    entities = {
        key: Entity(
            name=name, join_keys=[key], value_type=ValueType.STRING, description=text
        )
        for name, key, text in [
            ("user", USER_KEY, "one employee (customer, rater)"),
            ("item", ITEM_KEY, "one course (product, film)"),
            ("segment", SEGMENT_KEY, f"a user segment, or '{ALL_USERS}' for all"),
            ("segment_item", SEGMENT_ITEM_KEY, "'<segment>|<item>'"),
            ("user_category", USER_CATEGORY_KEY, "'<user>|<item category>'"),
        ]
    }
    sources: dict[str, Any] = {}
    objects: list[Any] = [*entities.values()]

    def view(
        name: str,
        key: str,
        fields: dict[str, Any],
        ttl: timedelta,
        description: str,
        tags: dict[str, str] | None = None,
    ) -> FeatureView:
        source = batch_source(f"{name}_source", f"{name}.parquet", data_dir, settings)
        sources[name] = source
        objects.append(source)
        return FeatureView(
            name=name,
            entities=[entities[key]],
            ttl=ttl,
            schema=[Field(name=n, dtype=t) for n, t in fields.items()],
            source=source,
            description=description,
            tags=tags or {},
        )

    popular_ttl = timedelta(days=max(window, RECENT_DAYS))
    views = [
        view(
            USER_PROFILE_VIEW,
            USER_KEY,
            {"segment": String, "seniority": Float64},
            FOREVER,
            "segment and seniority (NaN: unknown)",
        ),
        view(
            USER_HISTORY_VIEW,
            USER_KEY,
            {"history_length": Float64},
            FOREVER,
            "distinct items the user interacted with so far",
        ),
        view(
            USER_CATEGORY_VIEW,
            USER_CATEGORY_KEY,
            {"category_count": Float64, "category_top_level": Float64},
            FOREVER,
            "distinct items of the category so far and their highest level",
        ),
        view(
            ITEM_PROFILE_VIEW,
            ITEM_KEY,
            {
                "category": String,
                "level": Float64,
                "duration_hours": Float64,
                "roles": String,
                "created": UnixTimestamp,
            },
            FOREVER,
            "catalogue attributes (level 0: unknown)",
        ),
        view(
            ITEM_ACTIVITY_VIEW,
            ITEM_KEY,
            {"last_interaction": UnixTimestamp, "users_all_time": Float64},
            FOREVER,
            "recency and distinct users of the item so far",
        ),
        view(
            SEGMENT_ITEM_VIEW,
            SEGMENT_ITEM_KEY,
            {"window_users": Float64, "recent_users": Float64},
            popular_ttl,
            f"users of the segment who took the item in the last {window} "
            f"and {RECENT_DAYS} days",
            {WINDOW_TAG: str(window)},
        ),
        view(
            SEGMENT_VIEW,
            SEGMENT_KEY,
            {"window_active_users": Float64, "recent_active_users": Float64},
            popular_ttl,
            f"active users of the segment, last {window} and {RECENT_DAYS} days",
            {WINDOW_TAG: str(window)},
        ),
    ]
    push = PushSource(name=PUSH_SOURCE, batch_source=_today_source(data_dir, settings))
    today = FeatureView(
        name=TODAY_VIEW,
        entities=[entities[USER_KEY]],
        ttl=TODAY_TTL,
        schema=[
            Field(name="interactions_today", dtype=Float64),
            Field(name="last_item_id", dtype=String),
        ],
        source=push,
        description="the user's interactions of the day so far; pushed live",
    )
    return [*objects, push.batch_source, push, *views, today]


def _today_source(data_dir: Path, settings: Settings | None) -> Any:
    return batch_source(
        f"{TODAY_VIEW}_source", f"{TODAY_VIEW}.parquet", data_dir, settings
    )


class RecsysFeatureViews(FeatureViews):
    """The recsys views (profiles, history, popularity, today) as a capability."""

    materialized = MATERIALIZED_VIEWS
    training = RANKING_VIEWS
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
        """A user's interactions today so far: ``user_id``, ``item_id``,
        ``interactions`` (default 1).

        Raises:
            ValueError: a missing field, or a count that is not a number >= 1.
        """
        missing = [k for k in ("user_id", "item_id") if not fields.get(k)]
        if missing:
            raise ValueError(f"recsys push needs {', '.join(missing)}")
        raw = fields.get("interactions", "1")
        try:
            count = float(raw)
        except ValueError:
            raise ValueError(f"interactions must be a number, got {raw!r}") from None
        if not count >= 1:
            raise ValueError(f"interactions must be >= 1, got {count}")
        stamp = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        return pd.DataFrame(
            {
                USER_KEY: [fields["user_id"]],
                TIMESTAMP: [stamp],
                "interactions_today": [count],
                "last_item_id": [fields["item_id"]],
            }
        )
