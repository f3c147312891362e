"""The daily recsys batch: the champion's top-k courses for every known user.

``loopml batch -w recsys`` writes one row per user and rank (``user_id,
rank, item_id, score, reason``) to ``<home>/batch/recsys/date=D.parquet``
and the SQL table ``recommendations``; the service answers
``/v1/recsys/users/{user_id}/recommendations`` from the newest file of the
version it serves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import pyarrow as pa

from loopml.sdk.capabilities import BatchScorer
from loopml.workloads.recsys.config import RecsysSettings

if TYPE_CHECKING:
    from loopml.core.config import Settings

#: Users scored (and written) per chunk: bounds memory at any scale.
CHUNK_USERS = 50_000


class RecsysBatchScorer(BatchScorer):
    """Top ``k`` (``workloads.recsys.k``) courses per user, with a reason."""

    table = "recommendations"
    schema: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("rank", pa.int32(), nullable=False),
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("score", pa.float64(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
        ]
    )
    key_columns = ("user_id", "rank")
    # k distinct items per user and day, enforced by the database too.
    unique_columns = ("user_id", "item_id")
    lookup_key = "user_id"
    order_column = "rank"

    def score(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> Iterator[pd.DataFrame]:
        """Every user the champion was fitted with, ``CHUNK_USERS`` at a time."""
        k = RecsysSettings.of(settings).k
        users = model.user_ids()
        for start in range(0, len(users), CHUNK_USERS):
            yield model.recommend_frame(users[start : start + CHUNK_USERS], k)

    def count(self, model: Any, data: pd.DataFrame) -> int:
        """The users the champion knows (each gets a list)."""
        return len(model.user_ids())
