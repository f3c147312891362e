"""The recsys ranker's training features, read through point-in-time joins.

:class:`RankingFeatures` has the signature of ``recsys.features.build_features``
(the plain-code reference) and returns the same frame, but every feature of
the data comes from the offline store at the context's cutoff: one guarded
``point_in_time`` query per entity (users, items, user x category, segment x
item, segments), then the same arithmetic as ``build_features``. Only the
ALS score, an output of the inner stage-1 model, is passed through.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from feast.errors import FeatureViewNotFoundException

from loopml.sdk.feast import MissingFeaturesError, point_in_time
from loopml.workloads.recsys.feature_views import (
    ALL_USERS,
    ITEM_ACTIVITY_VIEW,
    ITEM_KEY,
    ITEM_PROFILE_VIEW,
    SEGMENT_ITEM_KEY,
    SEGMENT_ITEM_VIEW,
    SEGMENT_KEY,
    SEGMENT_VIEW,
    TIMESTAMP,
    USER_CATEGORY_KEY,
    USER_CATEGORY_VIEW,
    USER_HISTORY_VIEW,
    USER_KEY,
    USER_PROFILE_VIEW,
    WINDOW_TAG,
    pair_keys,
)
from loopml.workloads.recsys.features import FEATURE_COLUMNS

if TYPE_CHECKING:
    from feast import FeatureStore

    from loopml.workloads.recsys.features import FeatureContext, FloatArray, IntArray

log = logging.getLogger(__name__)

_DAY = pd.Timedelta(days=1)


def _refs(view: str, names: list[str]) -> list[str]:
    return [f"{view}:{name}" for name in names]


class RankingFeatures:
    """``build_features`` with the data's features from Feast (see module)."""

    def __init__(self, store: FeatureStore, window_days: int) -> None:
        """Check the store's tables were built for this popularity window.

        Args:
            store: a store the recsys ``features`` stage published to.
            window_days: the ranker's popularity window.

        Raises:
            MissingFeaturesError: when the recsys views are not in the store,
                or their window differs.
        """
        try:
            view = store.get_feature_view(SEGMENT_ITEM_VIEW)
        except FeatureViewNotFoundException as exc:
            raise MissingFeaturesError(
                f"{exc}: run `loopml features -w recsys` (part of `loopml run`) "
                "before training the ranker"
            ) from exc
        if view.tags.get(WINDOW_TAG) != str(window_days):
            raise MissingFeaturesError(
                f"the store's popularity window is {view.tags.get(WINDOW_TAG)} days,"
                f" the ranker's {window_days}: run `loopml features -w recsys`"
            )
        self.store = store

    def _query(
        self, key: str, values: pd.Series, at: pd.Timestamp, refs: list[str]
    ) -> pd.DataFrame:
        """Features of the distinct ``values`` of one entity at ``at``.

        One query per view: the file store drops an entity row from every
        view when one view has rows for it, all later than ``at`` (a user's
        first interaction after the cutoff); the guard would then blank the
        other views' features too.
        """
        entity = pd.DataFrame({key: pd.unique(values.astype(str))})
        entity[TIMESTAMP] = at
        views = dict.fromkeys(ref.split(":", 1)[0] for ref in refs)
        answers = [
            point_in_time(
                self.store,
                entity,
                [ref for ref in refs if ref.startswith(f"{view}:")],
                [key],
            ).set_index(key)
            for view in views
        ]
        return pd.concat([a.drop(columns=TIMESTAMP) for a in answers], axis=1)

    def __call__(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        items: IntArray,
        als_score: FloatArray,
    ) -> pd.DataFrame:
        """The ranking features of (user, item) pairs at ``context.cutoff``.

        Args:
            context: the history; only its cutoff and id indexes are used.
            user_rows: each pair's user row (users known to the context).
            segment_rows: unused: the segment is the user's, from the store.
            items: each pair's item column.
            als_score: each pair's ALS score.

        Returns:
            One row per pair, ``FEATURE_COLUMNS`` in order.

        Raises:
            MissingFeaturesError: when a user's or item's profile is missing.
        """
        if (user_rows >= len(context.user_ids)).any():
            raise MissingFeaturesError("training pairs must have known users")
        at = pd.Timestamp(context.cutoff).tz_localize("UTC")
        users = pd.Series(context.user_ids.to_numpy()[user_rows].astype(str))
        item_ids = pd.Series(context.item_ids.to_numpy()[items].astype(str))
        person = self._query(
            USER_KEY,
            users,
            at,
            _refs(USER_PROFILE_VIEW, ["segment", "seniority"])
            + _refs(USER_HISTORY_VIEW, ["history_length"]),
        )
        course = self._query(
            ITEM_KEY,
            item_ids,
            at,
            _refs(ITEM_PROFILE_VIEW, ["category", "level", "duration_hours"])
            + _refs(ITEM_PROFILE_VIEW, ["roles", "created"])
            + _refs(ITEM_ACTIVITY_VIEW, ["last_interaction", "users_all_time"]),
        )
        if person["segment"].isna().any() or course["category"].isna().any():
            raise MissingFeaturesError(
                f"users or items without a profile at {at}: run `loopml features "
                "-w recsys` on this data"
            )
        segment = person["segment"].reindex(users).reset_index(drop=True)
        category = course["category"].reindex(item_ids).reset_index(drop=True)
        user_category = pair_keys(users, category)
        affinity = self._query(
            USER_CATEGORY_KEY,
            user_category,
            at,
            _refs(USER_CATEGORY_VIEW, ["category_count", "category_top_level"]),
        ).reindex(user_category)
        own = pair_keys(segment, item_ids)
        every = pair_keys(pd.Series(ALL_USERS, index=item_ids.index), item_ids)
        popular = self._query(
            SEGMENT_ITEM_KEY,
            pd.concat([own, every]),
            at,
            _refs(SEGMENT_ITEM_VIEW, ["window_users", "recent_users"]),
        ).fillna(0.0)
        active = self._query(
            SEGMENT_KEY,
            pd.concat([segment, pd.Series([ALL_USERS])]),
            at,
            _refs(SEGMENT_VIEW, ["window_active_users", "recent_active_users"]),
        ).fillna(0.0)
        person = person.reindex(users)
        course = course.reindex(item_ids)

        def values(frame: pd.DataFrame, column: str, fill: float) -> FloatArray:
            out: FloatArray = frame[column].astype(np.float64).fillna(fill).to_numpy()
            return out

        count = values(affinity, "category_count", 0.0)
        top_level = values(affinity, "category_top_level", 0.0)
        length = values(person, "history_length", 0.0)
        raw_level = values(course, "level", 0.0)
        level = np.where(raw_level > 0, raw_level, np.nan)
        seniority = values(person, "seniority", np.nan)
        roles = course["roles"].fillna("").str.split(",").to_numpy()
        relevant = [s in r for s, r in zip(segment, roles, strict=True)]
        all_active = active.loc[ALL_USERS]
        segment_active = np.maximum(
            active["window_active_users"].reindex(segment).to_numpy(), 1.0
        )
        cutoff = at.tz_localize(None)
        created = pd.to_datetime(course["created"], utc=True).dt.tz_localize(None)
        seen = pd.to_datetime(course["last_interaction"], utc=True).dt.tz_localize(None)
        columns = {
            "als_score": als_score,
            "user_category_share": count / np.maximum(length, 1.0),
            "user_category_count": count,
            "level_step": np.where(top_level > 0, level - top_level, np.nan),
            "seniority_level_gap": level - (1.0 + seniority / 2.0),
            "role_relevant": np.asarray(relevant, dtype=np.float64),
            "segment_popularity": popular["window_users"].reindex(own).to_numpy()
            / segment_active,
            "global_popularity": popular["window_users"].reindex(every).to_numpy()
            / max(float(all_active["window_active_users"]), 1.0),
            "recent_popularity": popular["recent_users"].reindex(every).to_numpy()
            / max(float(all_active["recent_active_users"]), 1.0),
            "popularity_all_time": np.log1p(values(course, "users_all_time", 0.0)),
            "item_age_days": ((cutoff - created) / _DAY).to_numpy(dtype=np.float64),
            "days_since_last_interaction": ((cutoff - seen) / _DAY).to_numpy(
                dtype=np.float64
            ),
            "user_history_length": length,
            "seniority": seniority,
            "level": level,
            "duration_hours": values(course, "duration_hours", 0.0),
        }
        log.debug("read ranking features of %d pairs at %s", len(users), at)
        return pd.DataFrame(columns, columns=FEATURE_COLUMNS)
