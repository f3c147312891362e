"""Features: publish the validated data to Feast, offline and online.

Writes the workload's offline tables (parquet under
``<home>/feature_store/data``, or with ``offline: postgres`` tables
``<project>__<table>`` loaded by ``COPY``, see :mod:`loopml.sdk.pg_offline`),
applies its Feast definitions (entities,
sources, feature views; other workloads' objects are left alone) and loads the
online store up to the latest validated day: incrementally after the first
run, from ``latest - ttl`` on a view's first run, and again from
``latest - ttl`` when the last materialized day's rows changed since (a day of
history was replaced), which an incremental run would miss.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from loopml.core.config import FeatureStoreSettings, Settings
from loopml.core.errors import StageError
from loopml.core.io import (
    file_hash,
    read_table,
    require_file,
    write_json,
    write_parquet,
)
from loopml.sdk import pg_offline
from loopml.sdk.feast import data_dir, feature_store_settings, open_store
from loopml.sdk.workload import get_workload
from loopml.stages.common import StageResult

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

TIMESTAMP = "event_timestamp"
# Feast's file store includes the end of a window, others exclude it; one
# second past the last stamp covers both, and next day's rows stay outside.
_END_MARGIN = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def materialize(
    store: FeatureStore,
    views: tuple[str, ...],
    cutoff: dt.datetime,
    restate: bool = False,
) -> dict[str, str]:
    """Load each view's rows stamped up to ``cutoff`` into the online store.

    Args:
        store: the feature store.
        views: feature view names.
        cutoff: the last event time to load (tz-aware).
        restate: reload each view's whole TTL window (past rows changed).

    Returns:
        What happened per view: ``full from <start>``, ``incremental from
        <start>`` or ``up to date``.
    """
    end = cutoff + _END_MARGIN
    done: dict[str, str] = {}
    for name in views:
        view = store.get_feature_view(name)
        previous = view.most_recent_end_time
        if previous is not None and previous >= end and not restate:
            done[name] = "up to date"
            continue
        # Feast prints progress bars; keep them out of the CLI's output.
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            if previous is None or restate:
                # A first incremental run would start at now - ttl: past data
                # (a backfill, a replay) would never reach the online store.
                # A view without TTL keeps values forever: load all history.
                start = cutoff - view.ttl if view.ttl else _EPOCH
                store.materialize(start_date=start, end_date=end, feature_views=[name])
                done[name] = f"full from {start.isoformat()}"
            else:
                store.materialize_incremental(end_date=end, feature_views=[name])
                done[name] = f"incremental from {previous.isoformat()}"
        log.debug("feast output for %s: %s", name, captured.getvalue().strip())
    return done


def _fingerprint(tables: dict[str, pd.DataFrame], stamp: pd.Timestamp) -> str:
    """Hash of every row stamped ``stamp``: what the online store last got."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        rows = tables[name][tables[name][TIMESTAMP] == stamp]
        digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy())
    return digest.hexdigest()


def _restated(record: Path, tables: dict[str, pd.DataFrame], project: str) -> bool:
    """Whether the rows of the last materialized day changed since (a day of
    history was replaced), which incremental materialization would miss."""
    if not record.is_file():
        return False
    last = json.loads(record.read_text(encoding="utf-8"))
    if last.get("project") != project or "fingerprint" not in last:
        return False
    return bool(
        last["fingerprint"] != _fingerprint(tables, pd.Timestamp(last["cutoff"]))
    )


def run(
    settings: Settings, workload_name: str, fs: FeatureStoreSettings | None = None
) -> StageResult:
    """Write offline tables, apply definitions and materialize one workload.

    Args:
        settings: the active settings.
        workload_name: the workload; one without feature views is skipped.
        fs: feature-store settings (default: from ``settings``).

    Raises:
        StageError: when ``validated.parquet`` is missing or too short to give
            a single feature row.
    """
    started = time.perf_counter()
    features = get_workload(workload_name).feature_views()
    if features is None:
        return StageResult(
            "features",
            workload_name,
            "skipped",
            f"{workload_name} has no feature views: nothing to do",
        )
    data_path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    tables = features.offline_tables(read_table(data_path, "validate"), settings)
    if all(table.empty for table in tables.values()):
        raise StageError(f"{data_path} is too short to give a single feature row")
    folder = data_dir(settings)
    fs = fs or feature_store_settings(settings)
    # The workload's sources follow these feature-store settings.
    settings = settings.model_copy(update={"feature_store": fs})
    objects = features.objects(folder, settings)
    if fs.offline == "postgres":
        keys = pg_offline.table_keys(objects, fs.project, tables)
        pg_offline.write_tables(fs, tables, keys)
    else:
        for file_name, table in tables.items():
            write_parquet(table, folder / file_name)
    cutoff = max(pd.Timestamp(t[TIMESTAMP].max()) for t in tables.values() if len(t))
    record = settings.state_dir(workload_name) / "features.json"
    restated = _restated(record, tables, fs.project)
    store = open_store(settings, fs)
    store.apply(objects)
    views = features.materialized
    done = materialize(store, views, cutoff.to_pydatetime(), restated)
    details = {
        # What train checks: the offline tables are of this validated table.
        "data_version": file_hash(data_path),
        "project": fs.project,
        "online_store": fs.online,
        "offline_store": fs.offline,
        "registry": fs.registry,
        "tables": {name: len(table) for name, table in tables.items()},
        "cutoff": cutoff.isoformat(),
        "fingerprint": _fingerprint(tables, cutoff),
        "materialized": done,
        "restated": restated,
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_json(details, record)
    rows = sum(len(table) for table in tables.values())
    log.info("features: %d offline rows, online up to %s", rows, cutoff.date())
    return StageResult(
        "features",
        workload_name,
        summary=f"{rows:,} feature rows; online up to {cutoff.date()} ({fs.online})",
        metrics={"feature_rows": float(rows)},
        details=details,
    )
