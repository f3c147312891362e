"""The daily recsys batch: the champion's top-k courses for every known user.

``loopml batch -w recsys`` writes one row per user and rank (``user_id,
rank, item_id, score, reason``) to ``<home>/batch/recsys/date=D.parquet``
and the SQL table ``recommendations``; the service answers
``/v1/recsys/users/{user_id}/recommendations`` from the newest file of the
version it serves.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import pyarrow as pa

from loopml.sdk.capabilities import BatchScorer, BatchWork
from loopml.workloads.recsys.config import RecsysSettings

if TYPE_CHECKING:
    from loopml.core.config import Settings


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

    #: users scored (and written) per block: bounds memory at any scale.
    block_rows = 50_000

    def work(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> BatchWork:
        """Every user the champion was fitted with; every block shares ``k``."""
        users = pd.DataFrame({"user_id": model.user_ids()})
        return BatchWork(users, shared=RecsysSettings.of(settings).k)

    def score_block(self, model: Any, shared: Any, keys: pd.DataFrame) -> pd.DataFrame:
        """The top ``shared`` (``k``) items of each user of the block."""
        frame: pd.DataFrame = model.recommend_frame(keys["user_id"].tolist(), shared)
        return frame

    def count(self, model: Any, data: pd.DataFrame) -> int:
        """The users the champion knows (each gets a list)."""
        return len(model.user_ids())
