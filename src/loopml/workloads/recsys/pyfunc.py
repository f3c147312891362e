"""The recsys model as MLflow logs and serves it.

It bundles a fitted recommender with the user and item lookups it needs to
answer "what should user U learn next, and why?" on its own: the users'
segments (for new users the caller may pass one), item titles, and each
user's latest item per category (for "because you took ..." reasons).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from loopml.workloads.recsys.models import Recommender
from loopml.workloads.recsys.tables import RecsysData

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["user_id", "rank", "item_id", "score", "reason"]
# Categories too vague to explain a recommendation with.
_VAGUE_CATEGORIES = frozenset({"", "unknown", "other"})


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
        """
        self.recommender = recommender
        self.k = k
        self.history_reason = history_reason
        self.segment_reason = segment_reason
        self.fallback_reason = fallback_reason
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
        self.latest_title: dict[tuple[str, str], str] = {
            (u, c): title_of.get(i, i)
            for u, c, i in zip(
                latest["user_id"], latest["category"], latest["item_id"], strict=True
            )
            if c not in _VAGUE_CATEGORIES
        }

    def known(self, user_id: str) -> bool:
        """Whether the model has the user's segment (a user it was fitted on)."""
        return user_id in self.segment_of

    def _reason(self, user_id: str, item_id: str, segment: str | None) -> str:
        category = self.category_of.get(item_id, "")
        if (title := self.latest_title.get((user_id, category))) is not None:
            return self.history_reason.format(title=title)
        segment = segment or self.segment_of.get(user_id)
        if segment:
            return self.segment_reason.format(segment=segment)
        return self.fallback_reason

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
        segments = dict.fromkeys(ids, segment) if segment else None
        recs = self.recommender.recommend(ids, k, exclude_seen=True, segments=segments)
        return [
            [(item, score, self._reason(user, item, segment)) for item, score in row]
            for user, row in zip(ids, recs, strict=True)
        ]

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
