"""Validate: the data gate. Bad data stops the loop and changes nothing.

The gate judges ``raw.parquet`` (the whole table, so continuity is checked
across days) and, after a daily ingestion, the new days against the previous
validated batch (row-count bounds). On failure only the offending batch is
moved to ``<home>/quarantine/<workload>/`` (kept, never deleted): the new day
files of a daily batch, or the whole table for a snapshot. Days a daily batch
had replaced are put back from ``validated.parquet``. A Markdown and a JSON
report go to ``<home>/reports/<workload>/``, and ``validated.parquet``, the
registry and the champion stay exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.core.config import Settings
from loopml.core.errors import DataValidationError, StageError
from loopml.core.io import file_hash, require_file, write_json, write_parquet
from loopml.data.batches import (
    ACCEPTED,
    INGESTED,
    PREFIX,
    REJECTED,
    BatchStore,
    is_consumed,
    read_state,
    rows_per_day,
)
from loopml.sdk.batch import BatchValidator, DailyBatch, spec_of
from loopml.sdk.workload import get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)


def _failing_rows(error: DataValidationError, raw: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``raw`` that some check pointed at, with those checks."""
    failures = error.failure_cases
    if failures.empty or "index" not in failures:
        return raw.iloc[:0]
    positions = pd.to_numeric(failures["index"], errors="coerce")
    checks = (
        failures.assign(position=positions, check=failures["check"].astype(str))
        .dropna(subset=["position"])
        .groupby("position")["check"]
        .agg(lambda c: ", ".join(sorted(set(c))))
    )
    valid = [int(p) for p in checks.index if 0 <= p < len(raw)]
    rows = raw.reset_index(drop=True).iloc[valid].copy()
    rows.insert(0, "failed_checks", checks.loc[valid].to_numpy())
    rows.insert(0, "row", valid)
    return rows


def _write_report(
    error: DataValidationError,
    raw: pd.DataFrame,
    report_dir: Path,
    stamp: str,
    quarantined: list[Path],
) -> Path:
    """Write the Markdown and JSON reports; return the Markdown one."""
    report_dir.mkdir(parents=True, exist_ok=True)
    failures = error.failure_cases
    summary = (
        failures.assign(check=failures["check"].astype(str))
        .groupby(["column", "check"], dropna=False)
        .size()
        .reset_index(name="cases")
        if len(failures)
        else pd.DataFrame(columns=["column", "check", "cases"])
    )
    rows = _failing_rows(error, raw)
    payload = {
        "message": str(error),
        "quarantined": [str(p) for p in quarantined],
        "checks": json.loads(summary.to_json(orient="records")),
        "failing_rows": json.loads(
            rows.head(500).to_json(orient="records", date_format="iso")
        ),
        "failures": json.loads(
            failures.head(500).to_json(orient="records", date_format="iso")
        ),
    }
    json_path = report_dir / f"validation-{stamp}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str), "utf-8")
    md_path = report_dir / f"validation-{stamp}.md"
    kept = "\n".join(f"- `{p}`" for p in quarantined) or "- (nothing)"
    md_path.write_text(
        f"# Validation failed ({stamp})\n\n{error}\n\n"
        f"## Quarantined\n\n{kept}\n\n"
        f"## Failing checks\n\n{summary.to_markdown(index=False)}\n\n"
        f"## Failing rows (first 50 of {len(rows)})\n\n"
        f"{rows.head(50).to_markdown(index=False) if len(rows) else '(none)'}\n\n"
        f"Every failure is in `{json_path.name}`.\n",
        encoding="utf-8",
    )
    return md_path


def _quarantine(
    store: BatchStore, days: tuple[pd.Timestamp, ...], folder: Path, stamp: str
) -> tuple[list[Path], list[pd.Timestamp]]:
    """Move the offending batch away; return what was moved and what restored."""
    if not days:
        # A snapshot (or a table nobody ingested day by day): all of it.
        kept = folder / f"raw-{stamp}.parquet"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(str(store.raw_path), kept)
        store.clear()
        return [kept], []
    moved = [
        store.take_out(day, folder / f"{PREFIX}{day:%Y-%m-%d}-{stamp}.parquet")
        for day in days
    ]
    restored = [day for day in days if store.restore_day(day)]
    store.publish_union()
    return [p for p in moved if p is not None], restored


def _reject(
    settings: Settings,
    workload_name: str,
    error: DataValidationError,
    raw: pd.DataFrame,
    store: BatchStore,
    batch: DailyBatch | None,
    batch_id: str | None,
) -> StageError:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    folder = settings.home / "quarantine" / workload_name
    days = batch.days if batch else ()
    kept, restored = _quarantine(store, days, folder, stamp)
    md_path = _write_report(
        error, raw, settings.home / "reports" / workload_name, stamp, kept
    )
    restored_days = [f"{d:%Y-%m-%d}" for d in restored]
    record = {
        "batch_id": batch_id,
        "failed_at": stamp,
        "report": str(md_path),
        "quarantined": [str(p) for p in kept],
        "restored_days": restored_days,
    }
    write_json(record, settings.state_dir(workload_name) / REJECTED)
    log.error("validation failed; batch quarantined at %s", ", ".join(map(str, kept)))
    what = (
        f"daily batch ({', '.join(f'{d:%Y-%m-%d}' for d in days)})" if days else "batch"
    )
    put_back = (
        f" Earlier versions of {', '.join(restored_days)} were put back "
        "from validated.parquet."
        if restored
        else ""
    )
    return StageError(
        f"Validation of the {workload_name} {what} failed: {error} "
        f"The batch was moved to {', '.join(map(str, kept))}; the report is "
        f"{md_path}.{put_back} Nothing downstream ran: validated.parquet, the "
        "registry and the champion are unchanged."
    )


def run(settings: Settings, workload_name: str) -> StageResult:
    """Validate ``raw.parquet`` and publish it as ``validated.parquet``.

    Raises:
        StageError: when the data fails validation (after quarantining it),
            naming every failing column and check and the report's path.
    """
    workload = get_workload(workload_name)
    spec = spec_of(workload)
    store = BatchStore(settings.data_dir(workload_name), spec)
    state_dir = settings.state_dir(workload_name)
    raw = pd.read_parquet(require_file(store.raw_path, "ingest"))
    ingested = read_state(state_dir / INGESTED)
    accepted = read_state(state_dir / ACCEPTED)
    batch_id = ingested.get("batch_id")
    fresh = not is_consumed(state_dir, batch_id)
    batch = None
    if fresh and ingested.get("mode") == "daily":
        days = tuple(pd.Timestamp(d) for d in ingested.get("days", []))
        batch = DailyBatch(days, accepted.get("rows_per_day"))
    log.info(
        "validating %s (%d rows, md5 %s): %s",
        store.raw_path,
        len(raw),
        file_hash(store.raw_path),
        f"daily batch {[f'{d:%Y-%m-%d}' for d in batch.days]}" if batch else "table",
    )
    try:
        if batch is not None and isinstance(workload, BatchValidator):
            validated = workload.validate_batch(settings, raw, batch)
        else:
            validated = workload.validate(raw)
    except DataValidationError as error:
        raise _reject(
            settings, workload_name, error, raw, store, batch, batch_id
        ) from error
    write_parquet(validated, store.validated_path)
    column = spec.time_column
    if batch is not None:
        per_day = rows_per_day(validated, column, batch.days)
    elif fresh or "rows_per_day" not in accepted:
        per_day = rows_per_day(validated, column)
    else:  # re-validating what was already judged: keep the reference
        per_day = float(accepted["rows_per_day"])
    days_used = validated[column].dt.normalize().drop_duplicates().sort_values()
    details: dict[str, Any] = {
        "path": str(store.validated_path),
        "rows": len(validated),
        "batch_id": batch_id,
        "new_days": [f"{d:%Y-%m-%d}" for d in batch.days] if batch else [],
        "rows_per_day": per_day,
        "data_version": file_hash(store.validated_path),
        "used_days": days_used.dt.strftime("%Y-%m-%d").tolist(),
    }
    write_json(details, state_dir / ACCEPTED)
    log.info("validated %d rows (%s)", len(validated), details["data_version"])
    return StageResult(
        "validate",
        workload_name,
        summary=f"{len(validated):,} rows ok",
        details={k: v for k, v in details.items() if k != "used_days"},
    )
