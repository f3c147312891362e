"""Workloads that break one capability each, for ``check_workload``'s tests.

Registered through ``LOOPML_PLUGINS`` (:data:`PLUGINS`); each is the bare
mean-predicting workload of ``bare_workload`` with one capability broken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

from bare_workload import BareWorkload
from loopml.core.config import Settings
from loopml.sdk.capabilities import BatchScorer

PLUGINS = (
    "wrongscorer=broken_workloads:WrongScorerWorkload,"
    "brokenbatch=broken_workloads:BrokenBatchWorkload"
)


class _Gated(BareWorkload):
    """The bare workload with a holdout the gate can score (it always passes)."""

    def holdout_metrics(
        self, settings: Settings, data: pd.DataFrame, models: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        scores = {name: {"mae": 1.0} for name in models}
        scores["baseline"] = {"mae": 2.0}
        return scores


class WrongScorerWorkload(_Gated):
    """Its online scorer is not an OnlineScorer."""

    name = "wrongscorer"

    def online_scorer(self) -> Any:
        return object()


class FailingBatch(BatchScorer):
    """A batch scorer whose scoring fails."""

    table = "broken"
    schema = pa.schema([("value", pa.float64())])
    key_columns = ("value",)

    def score(
        self, model: Any, settings: Settings, data: pd.DataFrame, day: dt.date
    ) -> Iterator[pd.DataFrame]:
        raise RuntimeError("the batch scorer is broken")


class BrokenBatchWorkload(_Gated):
    """Trains and promotes, then its batch fails."""

    name = "brokenbatch"

    def batch_scorer(self) -> BatchScorer:
        return FailingBatch()
