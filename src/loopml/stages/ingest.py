"""Ingest: read or generate the workload's raw table into the home folder."""

from __future__ import annotations

import logging

from loopml.config import Settings
from loopml.stages.common import StageResult, write_json, write_parquet
from loopml.workloads.base import get_workload

log = logging.getLogger(__name__)


def run(settings: Settings, workload_name: str) -> StageResult:
    """Load the configured dataset and store it as ``raw.parquet``.

    Args:
        settings: the active settings.
        workload_name: which workload to ingest for.

    Returns:
        The stage result with the row count and date range.
    """
    workload = get_workload(workload_name)
    raw = workload.load_raw(settings)
    path = settings.data_dir(workload_name) / "raw.parquet"
    write_parquet(raw, path)
    details = {"path": str(path), "rows": len(raw)}
    if "date" in raw.columns and len(raw):
        details["first_date"] = str(raw["date"].min().date())
        details["last_date"] = str(raw["date"].max().date())
    write_json(details, settings.state_dir(workload_name) / "ingest.json")
    log.info("ingested %d rows into %s", len(raw), path)
    return StageResult(
        "ingest", workload_name, summary=f"{len(raw):,} rows", details=details
    )
