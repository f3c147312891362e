"""Ingest: read or generate the workload's raw data into the home folder.

* Snapshot (no day): the whole history as one table, ``raw.parquet``; any
  day files are dropped, since the snapshot restates everything.
* Daily (a day): that day's rows become ``batches/date=YYYY-MM-DD.parquet``,
  replacing an earlier batch of the same day (never duplicating it), and
  ``raw.parquet`` is rebuilt as the union of the day files. A day that
  ``validate`` already accepted is refused unless forced: models were
  trained on it, so restating it must be deliberate.

Either mode can read a parquet file in the raw table's format instead of the
configured dataset (a day's delivery from upstream, say). Either way, columns
the workload marks personal are pseudonymised before
anything is written, and ``ingest.json`` records what is new since the last
validation, so ``validate`` knows which days form the batch it judges.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import write_json, write_parquet
from loopml.data.batches import ACCEPTED, INGESTED, BatchStore, is_consumed, read_state
from loopml.data.privacy import PseudonymKeyError, pseudonym_key, pseudonymise_columns
from loopml.sdk.batch import BatchSpec, DayLoader, spec_of
from loopml.sdk.workload import Workload, get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)


def _protect(frame: pd.DataFrame, spec: BatchSpec, settings: Settings) -> pd.DataFrame:
    """Pseudonymise the personal columns (the key is only needed if any)."""
    if not spec.personal_columns:
        return frame
    try:
        key = pseudonym_key(settings.profile)
    except PseudonymKeyError as error:
        raise StageError(str(error)) from error
    log.info("pseudonymising %s", list(spec.personal_columns))
    return pseudonymise_columns(frame, spec.personal_columns, key)


def _span(frame: pd.DataFrame, column: str) -> dict[str, Any]:
    if column not in frame.columns or frame.empty:
        return {}
    if not pd.api.types.is_datetime64_any_dtype(frame[column]):
        return {}  # a broken file: validate will name the column
    return {
        "first_date": str(frame[column].min().date()),
        "last_date": str(frame[column].max().date()),
    }


def _load_day(
    workload: Workload, settings: Settings, day: pd.Timestamp
) -> pd.DataFrame:
    if isinstance(workload, DayLoader):
        return workload.load_day(settings, day)
    # Any workload can replay its source day by day, if not cheaply.
    raw = workload.load_raw(settings)
    column = spec_of(workload).time_column
    return raw[raw[column].dt.normalize() == day].reset_index(drop=True)


def _read_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StageError(f"the batch file {path} does not exist")
    return pd.read_parquet(path)


def _snapshot(
    settings: Settings, workload: Workload, store: BatchStore, source: Path | None
) -> StageResult:
    spec = store.spec
    loaded = workload.load_raw(settings) if source is None else _read_file(source)
    raw = _protect(loaded, spec, settings)
    store.clear()
    write_parquet(raw, store.raw_path)
    section = settings.workloads.get(workload.name, {})
    details: dict[str, Any] = {
        "mode": "snapshot",
        "source": str(source or "dataset"),
        # Later commands on this home read the same data (cli._home_dataset).
        "dataset": section.get("dataset") if source is None else None,
        "data_path": section.get("data_path") if source is None else None,
        "batch_id": uuid.uuid4().hex,
        "days": [],
        "path": str(store.raw_path),
        "rows": len(raw),
        **_span(raw, spec.time_column),
    }
    write_json(details, settings.state_dir(workload.name) / INGESTED)
    log.info("ingested a snapshot of %d rows into %s", len(raw), store.raw_path)
    return StageResult(
        "ingest", workload.name, summary=f"{len(raw):,} rows", details=details
    )


def _pending(settings: Settings, name: str, day: str) -> tuple[str, list[str]]:
    """The batch mode and new days once ``day`` joins what is not validated."""
    state_dir = settings.state_dir(name)
    previous = read_state(state_dir / INGESTED)
    if previous and not is_consumed(state_dir, previous.get("batch_id")):
        if previous.get("mode") == "snapshot":
            # The snapshot below is not validated either: judge it all as one.
            return "snapshot", []
        return "daily", sorted({*previous.get("days", []), day})
    return "daily", [day]


def _daily(
    settings: Settings,
    workload: Workload,
    store: BatchStore,
    day: pd.Timestamp,
    force: bool,
    source: Path | None,
) -> StageResult:
    name = workload.name
    label = f"{day:%Y-%m-%d}"
    accepted = read_state(settings.state_dir(name) / ACCEPTED)
    if label in accepted.get("used_days", []) and not force:
        raise StageError(
            f"{name} data for {label} was already validated and used (recorded in "
            f"{settings.state_dir(name) / ACCEPTED}); models may have been trained "
            "on it. Pass --force to replace that day's batch anyway."
        )
    loaded = (
        _load_day(workload, settings, day) if source is None else _read_file(source)
    )
    batch = _protect(loaded, store.spec, settings)
    if batch.empty:
        log.warning("the %s source has no rows for %s", name, label)
    seeded = store.seed()
    path = store.write_day(day, batch)
    union = store.publish_union()
    mode, days = _pending(settings, name, label)
    details: dict[str, Any] = {
        "mode": mode,
        "batch_id": uuid.uuid4().hex,
        "day": label,
        "days": days,
        "forced": force,
        "source": str(source or "dataset"),
        "batch_path": str(path),
        "batch_rows": len(batch),
        "path": str(store.raw_path),
        "rows": 0 if union is None else len(union),
        "seeded_days": seeded,
        # The dataset the home holds goes on (see the snapshot's record).
        "dataset": settings.workloads.get(name, {}).get("dataset"),
        "data_path": settings.workloads.get(name, {}).get("data_path"),
    }
    write_json(details, settings.state_dir(name) / INGESTED)
    log.info(
        "ingested %d rows for %s into %s (%s rows in the union)",
        len(batch),
        label,
        path,
        details["rows"],
    )
    return StageResult(
        "ingest",
        name,
        summary=f"{len(batch):,} rows for {label}, {details['rows']:,} rows in raw",
        details=details,
    )


def run(
    settings: Settings,
    workload_name: str,
    day: dt.date | None = None,
    force: bool = False,
    source: Path | None = None,
) -> StageResult:
    """Store the configured dataset: a whole snapshot, or one day's batch.

    Args:
        settings: the active settings.
        workload_name: which workload to ingest for.
        day: the day to append; ``None`` ingests the whole history at once.
        force: replace a day that was already validated and used.
        source: a parquet file to read instead of the configured dataset (for
            a day: that day's rows, stored as they are for validate to judge).

    Returns:
        The stage result with row counts (and the day, for a daily batch).

    Raises:
        StageError: a used day without ``force``, a missing ``source`` file, or
            a missing pseudonym key.
    """
    workload = get_workload(workload_name)
    store = BatchStore(settings.data_dir(workload_name), spec_of(workload))
    if day is None:
        return _snapshot(settings, workload, store, source)
    return _daily(
        settings, workload, store, pd.Timestamp(day).normalize(), force, source
    )
