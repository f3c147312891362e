"""Validate: the data gate. Bad data stops the loop and changes nothing.

On failure the batch is moved to ``<home>/quarantine`` (kept, never deleted),
a Markdown and a JSON report are written under ``<home>/reports``, and the
validated table, the registry and the champion stay exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import pandas as pd

from loopml.config import Settings
from loopml.stages.common import (
    StageError,
    StageResult,
    require_file,
    write_json,
    write_parquet,
)
from loopml.workloads.base import get_workload
from loopml.workloads.errors import DataValidationError

log = logging.getLogger(__name__)


def _write_report(
    error: DataValidationError, report_dir: Path, stamp: str
) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    failures: pd.DataFrame = getattr(error, "failure_cases", pd.DataFrame())
    json_path = report_dir / f"validation-{stamp}.json"
    md_path = report_dir / f"validation-{stamp}.md"
    records = json.loads(failures.head(500).to_json(orient="records", date_unit="s"))
    json_path.write_text(
        json.dumps({"message": str(error), "failures": records}, indent=2),
        encoding="utf-8",
    )
    table = failures.head(50).to_markdown(index=False) if len(failures) else ""
    md_path.write_text(
        f"# Validation failed ({stamp})\n\n{error}\n\n"
        f"## Failing checks (first 50 of {len(failures)})\n\n{table}\n",
        encoding="utf-8",
    )
    return md_path, json_path


def run(settings: Settings, workload_name: str) -> StageResult:
    """Validate ``raw.parquet`` and publish it as ``validated.parquet``.

    Raises:
        StageError: when the data fails validation (after quarantining it).
    """
    workload = get_workload(workload_name)
    raw_path = require_file(settings.data_dir(workload_name) / "raw.parquet", "ingest")
    raw = pd.read_parquet(raw_path)
    try:
        validated = workload.validate(raw)
    except DataValidationError as error:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        md_path, _ = _write_report(
            error, settings.home / "reports" / workload_name, stamp
        )
        quarantine = settings.home / "quarantine" / workload_name
        quarantine.mkdir(parents=True, exist_ok=True)
        kept = quarantine / f"raw-{stamp}.parquet"
        shutil.move(str(raw_path), kept)
        log.error("validation failed; batch quarantined at %s", kept)
        raise StageError(
            f"Validation of the {workload_name} batch failed: {error} "
            f"The batch was moved to {kept}; the report is {md_path}. "
            "Nothing downstream ran: the champion and stored data are unchanged."
        ) from error
    path = settings.data_dir(workload_name) / "validated.parquet"
    write_parquet(validated, path)
    details = {"path": str(path), "rows": len(validated)}
    write_json(details, settings.state_dir(workload_name) / "validate.json")
    log.info("validated %d rows", len(validated))
    return StageResult(
        "validate",
        workload_name,
        summary=f"{len(validated):,} rows ok",
        details=details,
    )
