"""Where daily batch results live, and which model version wrote a file.

``loopml batch`` writes ``<home>/batch/<workload>/date=YYYY-MM-DD.parquet``
with the writing version in the file's metadata; the service reads the
newest file of the version it serves.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq

from loopml.core.config import Settings

#: Parquet metadata key holding the model version that wrote a result file.
VERSION_KEY = b"loopml.model_version"
#: Result files are ``date=YYYY-MM-DD.parquet``.
PREFIX, SUFFIX = "date=", ".parquet"


def batch_dir(settings: Settings, workload: str) -> Path:
    """The folder of a workload's daily result files."""
    return settings.home / "batch" / workload


def result_path(settings: Settings, workload: str, day: dt.date) -> Path:
    """The result file of one day."""
    return batch_dir(settings, workload) / f"{PREFIX}{day.isoformat()}{SUFFIX}"


def file_version(path: Path) -> str | None:
    """The model version a result file was written by (from its metadata)."""
    metadata = pq.read_schema(path).metadata or {}
    version = metadata.get(VERSION_KEY)
    return None if version is None else version.decode()


def file_day(path: Path) -> dt.date:
    """The day of a result file, from its name."""
    return dt.date.fromisoformat(path.name[len(PREFIX) : -len(SUFFIX)])
