"""The daily batch: the churn risk of every subscription up for renewal on a day.

``loopml batch -w {{ cookiecutter.workload_name }} [--date D]`` scores the
subscriptions whose renewal falls on day ``D`` (default: the day after the
last validated day, i.e. tomorrow's renewals), read from the source before
anyone decided (``data.scheduled``), and stores one row per subscriber
(``customer_id``, ``probability``, ``label``, plus the day and the model
version) in ``<home>/batch/<workload>/date=D.parquet`` and the SQL table
``<workload>_scores``: the retention team's call list, riskiest first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa
from loopml.core.config import Settings
from loopml.sdk.capabilities import BatchScorer, BatchWork

from .data import scheduled
from .features import INPUT_COLUMNS
from .pyfunc import python_model
from .settings import {{ cookiecutter.__class_name }}Settings

class {{ cookiecutter.__class_name }}BatchScorer(BatchScorer):
    """Churn probability and label of every renewal of a day, riskiest first."""

    table: ClassVar[str] = "{{ cookiecutter.workload_name }}_scores"
    schema: ClassVar[pa.Schema] = pa.schema(
        [
            ("customer_id", pa.string()),
            ("probability", pa.float64()),
            ("label", pa.int64()),
        ]
    )
    key_columns: ClassVar[tuple[str, ...]] = ("customer_id",)
    lookup_key: ClassVar[str | None] = "customer_id"
    #: subscriptions scored per block (bounded memory; the unit of work on Ray).
    block_rows: ClassVar[int] = 50_000

    def work(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> BatchWork:
        """The subscriptions up for renewal on ``day``, with their model inputs."""
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        renewals = scheduled(cfg, pd.Timestamp(day), settings.seed)
        return BatchWork(renewals[["customer_id", *INPUT_COLUMNS]])

    def score_block(self, model: Any, shared: Any, keys: pd.DataFrame) -> pd.DataFrame:
        """The block's churn scores, riskiest first."""
        answer = python_model(model).predict(None, keys[INPUT_COLUMNS])
        scored = pd.DataFrame(
            {
                "customer_id": keys["customer_id"].astype(str).to_numpy(),
                "probability": answer["probability"].to_numpy(dtype=float),
                "label": answer["label"].to_numpy(dtype="int64"),
            }
        )
        return scored.sort_values("probability", ascending=False, ignore_index=True)
