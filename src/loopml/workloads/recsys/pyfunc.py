"""The recsys model as MLflow logs and serves it.

It bundles a fitted recommender with the user and item lookups it needs to
answer "what should user U learn next, and why?" on its own: the users'
segments (for new users the caller may pass one), item titles, and each
user's latest item per category (for "because you took ..." reasons).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from loopml.workloads.recsys.models import Recommender
from loopml.workloads.recsys.models.base import RecommenderBase
from loopml.workloads.recsys.tables import RecsysData

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["user_id", "rank", "item_id", "score", "reason"]
# Categories too vague to explain a recommendation with.
_VAGUE_CATEGORIES = frozenset({"", "unknown", "other"})


def _named(segment: object) -> bool:
    """Whether a segment value names one (not missing, not empty)."""
    return isinstance(segment, str) and bool(segment)


class RecsysModel(PythonModel):
    """A fitted recommender plus the lookups that make it explainable."""

    def __init__(
        self,
        recommender: Recommender,
        data: RecsysData,
        k: int = 10,
        history_reason: str = "because you took {title}",
        segment_reason: str = "popular with {segment}s",
        fallback_reason: str = "popular overall",
        recent: pd.DataFrame | None = None,
    ) -> None:
        """Bundle a recommender fitted on ``data`` with its lookups.

        Args:
            recommender: a fitted recommender.
            data: the tables it was fitted on.
            k: how many items ``predict`` returns when a row has no ``k``.
            history_reason: reason template for an item in a category the
                user already took; ``{title}`` is the latest such item.
            segment_reason: reason template otherwise; ``{segment}`` is the
                user's segment.
            fallback_reason: the reason for users without a known segment.
            recent: ``user_id, item_id`` of interactions after the
                recommender's training data (the gate's holdout period):
                never recommended, like the ones it was fitted on.
        """
        self.recommender = recommender
        self.k = k
        self.history_reason = history_reason
        self.segment_reason = segment_reason
        self.fallback_reason = fallback_reason
        pairs = (
            pd.DataFrame(columns=["user_id", "item_id"])
            if recent is None
            else recent[["user_id", "item_id"]].astype(str).drop_duplicates()
        )
        #: user_id, item_id taken after the fit: filtered from recommendations.
        self.recent = pairs.reset_index(drop=True)
        self._recent_max = (
            int(pairs["user_id"].value_counts().max()) if len(pairs) else 0
        )
        self.segment_of: dict[str, str] = dict(
            zip(data.users["user_id"], data.users["segment"], strict=True)
        )
        self.category_of: dict[str, str] = dict(
            zip(data.items["item_id"], data.items["category"], strict=True)
        )
        title_of = dict(zip(data.items["item_id"], data.items["title"], strict=True))
        latest = (
            data.interactions.sort_values("timestamp", kind="stable")
            .assign(category=lambda f: f["item_id"].map(self.category_of))
            .drop_duplicates(["user_id", "category"], keep="last")
        )
        latest = latest[~latest["category"].isin(_VAGUE_CATEGORIES)]
        #: each user's latest item title per category: ``user_id, category, title``.
        self.latest_titles = pd.DataFrame(
            {
                "user_id": latest["user_id"].astype(str).to_numpy(),
                "category": latest["category"].to_numpy(),
                "title": latest["item_id"].map(title_of).fillna(latest["item_id"]),
            }
        )

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled: everything but the lookups :meth:`recommend_one` builds."""
        return {k: v for k, v in self.__dict__.items() if k != "_lookups"}

    def _one_lookups(
        self,
    ) -> tuple[dict[str, frozenset[str]], dict[tuple[str, str], str], Any]:
        """Each user's recent items, latest title per (user, category), items."""
        lookups = self.__dict__.get("_lookups")
        if lookups is None:
            recent: dict[str, set[str]] = {}
            for user, item in self.recent.itertuples(index=False):
                recent.setdefault(str(user), set()).add(str(item))
            titles = {
                (u, c): t
                for u, c, t in self.latest_titles.itertuples(index=False)
                if isinstance(c, str)
            }
            engine: Any = self.recommender
            items = engine._check_fitted().item_ids.to_numpy()
            lookups = ({u: frozenset(i) for u, i in recent.items()}, titles, items)
            self.__dict__["_lookups"] = lookups
        return lookups

    def recommend_one(
        self, user_id: str, k: int, segment: str | None = None
    ) -> list[tuple[int, str, float, str]]:
        """One user's :meth:`recommend_frame` rows without a frame.

        Returns:
            ``(rank, item_id, score, reason)`` best first: the very rows
            ``recommend_frame([user_id], k, segment)`` has (a test checks;
            a batch of users can differ in a score's last float32 bit, as
            BLAS sums a matrix product in another order than a vector's).
        """
        user = str(user_id)
        engine: Any = self.recommender
        if not isinstance(engine, RecommenderBase):  # no arrays to read
            frame = self.recommend_frame([user], k, segment)
            return [
                (int(r), str(i), float(s), str(w))
                for r, i, s, w in frame[
                    ["rank", "item_id", "score", "reason"]
                ].itertuples(index=False)
            ]
        recent, titles, items = self._one_lookups()
        segments = {user: segment} if segment else None
        columns, values = engine.top_items(
            [user], k + self._recent_max, exclude_seen=True, segments=segments
        )
        taken = recent.get(user, frozenset())
        own = segment if segment else self.segment_of.get(user)
        by_segment = self.segment_reason.format(segment=own) if _named(own) else None
        out: list[tuple[int, str, float, str]] = []
        for column, value in zip(columns[0].tolist(), values[0].tolist(), strict=True):
            if column < 0:
                break
            item = str(items[column])
            if item in taken:
                continue
            title = titles.get((user, self.category_of.get(item, "")))
            if title is not None:
                reason = self.history_reason.format(title=title)
            else:
                reason = by_segment or self.fallback_reason
            out.append((len(out) + 1, item, float(value), reason))
            if len(out) == k:
                break
        return out

    def known(self, user_id: str) -> bool:
        """Whether the model has the user's segment (a user it was fitted on)."""
        return user_id in self.segment_of

    def user_ids(self) -> list[str]:
        """Every user the model was fitted with, sorted (the batch scores each)."""
        return sorted(str(u) for u in self.segment_of)

    @functools.cached_property
    def segments(self) -> frozenset[str]:
        """The segments the model knows (computed once)."""
        return frozenset(str(s) for s in self.segment_of.values() if _named(s))

    def _reasons(self, frame: pd.DataFrame, segment: str | None) -> pd.Series:
        """A short reason per recommendation row, without a loop per row.

        "Because you took X" when the user has an item of the recommended
        item's category (X is the latest), else "popular with <segment>s",
        else the fallback.
        """
        asked = pd.DataFrame(
            {
                "user_id": frame["user_id"].to_numpy(),
                "category": frame["item_id"].map(self.category_of).to_numpy(),
            }
        )
        titles = asked.merge(self.latest_titles, how="left", on=["user_id", "category"])
        history = titles["title"].map(
            {t: self.history_reason.format(title=t) for t in titles["title"].dropna()}
        )
        segments = (
            pd.Series(segment, index=asked.index, dtype=object)
            if segment
            else asked["user_id"].map(self.segment_of)
        )
        by_segment = segments.map(
            {s: self.segment_reason.format(segment=s) for s in segments if _named(s)}
        )
        reasons = history.fillna(by_segment).fillna(self.fallback_reason)
        return pd.Series(reasons.to_numpy(dtype=object), index=frame.index)

    def recommend_frame(
        self, user_ids: list[str], k: int, segment: str | None = None
    ) -> pd.DataFrame:
        """Top ``k`` items per user with score and reason, as one long table.

        Vectorised over users (the daily batch scores every user with it).

        Args:
            user_ids: the users; unknown ones are treated as new employees.
            k: items per user.
            segment: the segment (job role) of unknown users; known users keep
                their own unless this is given.

        Returns:
            :data:`OUTPUT_COLUMNS`, in input order then rank order.
        """
        ids = [str(u) for u in user_ids]
        segments = dict.fromkeys(ids, segment) if segment else None
        frame = self.recommender.recommend_frame(
            ids, k + self._recent_max, exclude_seen=True, segments=segments
        )
        frame = self._drop_recent(frame, k)
        frame["reason"] = self._reasons(frame, segment)
        return frame[OUTPUT_COLUMNS]

    def _drop_recent(self, frame: pd.DataFrame, k: int) -> pd.DataFrame:
        """Remove items users took after the fit; keep the top ``k``, re-ranked."""
        if self._recent_max:
            flagged = frame.merge(
                self.recent.assign(_recent=True),
                on=["user_id", "item_id"],
                how="left",
            )
            frame = frame[flagged["_recent"].isna().to_numpy()]
        frame = frame.reset_index(drop=True)
        frame["rank"] = frame.groupby("user_id", sort=False).cumcount() + 1
        return frame[frame["rank"] <= k].reset_index(drop=True)

    def recommend(
        self, user_ids: list[str], k: int, segment: str | None = None
    ) -> list[list[tuple[str, float, str]]]:
        """Top ``k`` items per user with a score and a short human reason.

        Args:
            user_ids: the users; unknown ones are treated as new employees.
            k: items per user.
            segment: the segment (job role) of unknown users; known users keep
                their own unless this is given.

        Returns:
            Per user, ``(item_id, score, reason)`` sorted by decreasing score.
        """
        ids = [str(u) for u in user_ids]
        unique = list(dict.fromkeys(ids))
        frame = self.recommend_frame(unique, k, segment)
        rows: dict[str, list[tuple[str, float, str]]] = {u: [] for u in unique}
        for user, item, score, reason in zip(
            frame["user_id"],
            frame["item_id"],
            frame["score"],
            frame["reason"],
            strict=True,
        ):
            rows[user].append((str(item), float(score), str(reason)))
        return [rows[u] for u in ids]

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """MLflow's entry point: ``user_id`` (and optional ``k``, ``segment``) rows.

        Returns:
            One row per recommendation: ``user_id, rank, item_id, score,
            reason``, in input order then rank order.
        """
        frame = model_input.reset_index(drop=True)
        k_values = (
            pd.to_numeric(frame["k"]).fillna(self.k).astype(int)
            if "k" in frame.columns
            else pd.Series(self.k, index=frame.index)
        )
        segments = (
            frame["segment"].astype(object).where(frame["segment"].notna(), None)
            if "segment" in frame.columns
            else pd.Series(None, index=frame.index, dtype=object)
        )
        answers: dict[int, list[tuple[str, float, str]]] = {}
        requests = pd.DataFrame(
            {"user_id": frame["user_id"].astype(str), "k": k_values, "seg": segments}
        )
        for (k, seg), rows in requests.groupby(["k", "seg"], dropna=False, sort=False):
            segment = None if pd.isna(seg) else str(seg)
            recs = self.recommend(rows["user_id"].tolist(), int(k), segment)
            answers.update(zip(rows.index, recs, strict=True))
        records = [
            (requests.at[i, "user_id"], rank, item, score, reason)
            for i in requests.index
            for rank, (item, score, reason) in enumerate(answers[i], start=1)
        ]
        out = pd.DataFrame.from_records(records, columns=OUTPUT_COLUMNS)
        return out.astype(
            {"user_id": str, "rank": "int64", "item_id": str, "score": "float64"}
        )
