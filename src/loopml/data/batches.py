"""Day-partitioned raw data: how daily batches are stored, unioned and undone.

Under ``<home>/data/<workload>/``:

* ``batches/date=YYYY-MM-DD.parquet``: one file per ingested day;
* ``raw.parquet``: what ``validate`` reads, the union of the day files;
* ``validated.parquet``: the last union ``validate`` accepted.

A snapshot (``loopml ingest`` without ``--date``) writes ``raw.parquet`` alone
and clears the day files. The first daily batch after it splits the snapshot
into day files (or, when the snapshot was quarantined, the validated table),
so from then on ``raw.parquet`` is always the union of the day files.

Workloads describe their table with a :class:`BatchSpec`; those that can cut
a day more cheaply than loading everything implement :class:`DayLoader`, and
those with checks that compare a batch with the days before it implement
:class:`BatchValidator`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.core.io import write_parquet
from loopml.sdk.batch import BatchSpec

log = logging.getLogger(__name__)
#: Day files read by this process, by (path, mtime, size): a replay or a
#: daily run rebuilds the union every day and re-reads only what changed.
_READ: dict[tuple[str, int, int], pd.DataFrame] = {}
_READ_MAX = 20_000


def _read_day(path: Path) -> pd.DataFrame:
    """One day file, from the cache when it has not changed since."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    frame = _READ.get(key)
    if frame is None:
        frame = pd.read_parquet(path)
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        _READ[key] = frame
    return frame


PREFIX = "date="


def _as_text_where_mixed(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn object columns holding several value types into text (None kept)."""
    out = frame.copy()
    for column in out.select_dtypes(include="object").columns:
        if out[column].dropna().map(type).nunique() > 1:
            out[column] = out[column].map(lambda v: None if pd.isna(v) else str(v))
    return out


def rows_per_day(
    frame: pd.DataFrame, column: str, days: tuple[pd.Timestamp, ...] = ()
) -> float:
    """Median number of rows per day, over ``days`` or over every day present."""
    counts = frame[column].dt.normalize().value_counts()
    if days:
        counts = counts.reindex(list(days), fill_value=0)
    return float(counts.median()) if len(counts) else 0.0


class BatchStore:
    """The day files of one workload and the union built from them."""

    def __init__(self, data_dir: Path, spec: BatchSpec) -> None:
        """Point at ``<home>/data/<workload>`` (nothing is created yet)."""
        self.spec = spec
        self.folder = data_dir / "batches"
        self.raw_path = data_dir / "raw.parquet"
        self.validated_path = data_dir / "validated.parquet"

    def path(self, day: pd.Timestamp) -> Path:
        """The file of one day's batch."""
        return self.folder / f"{PREFIX}{day:%Y-%m-%d}.parquet"

    def days(self) -> list[pd.Timestamp]:
        """Days that have a stored batch, oldest first."""
        names = sorted(self.folder.glob(f"{PREFIX}*.parquet"))
        return [pd.Timestamp(p.stem.removeprefix(PREFIX)) for p in names]

    def write_day(self, day: pd.Timestamp, frame: pd.DataFrame) -> Path:
        """Store (or replace) one day's batch atomically."""
        path = self.path(day)
        write_parquet(frame.reset_index(drop=True), path)
        return path

    def clear(self) -> None:
        """Forget every day file (a snapshot replaces the whole history)."""
        if self.folder.is_dir():
            shutil.rmtree(self.folder)

    def seed(self) -> int:
        """Split the current table into day files if there are none yet.

        The current table is ``raw.parquet``, else ``validated.parquet`` (when
        the last snapshot was quarantined).

        Returns:
            The number of day files written.
        """
        if self.days():
            return 0
        source = next(
            (p for p in (self.raw_path, self.validated_path) if p.is_file()), None
        )
        if source is None:
            return 0
        frame = pd.read_parquet(source)
        column = self.spec.time_column
        if not pd.api.types.is_datetime64_any_dtype(frame.get(column)):
            raise ValueError(
                f"cannot split {source} into days: its {column!r} column is not a "
                "datetime; run `loopml validate` on it (or ingest a new snapshot)"
            )
        # All the day files or none: they are written aside, then moved in
        # with one rename. Before, a split cut short (Ctrl-C) left some days,
        # taken for the whole history: every later day failed as a gap.
        staging = self.folder.with_name(self.folder.name + ".splitting")
        if staging.exists():
            shutil.rmtree(staging)
        for day, rows in frame.groupby(frame[column].dt.normalize(), sort=True):
            name = f"{PREFIX}{pd.Timestamp(day):%Y-%m-%d}.parquet"
            write_parquet(rows.reset_index(drop=True), staging / name)
        if self.folder.exists():  # no day files in it (see above)
            shutil.rmtree(self.folder)
        if staging.exists():
            staging.rename(self.folder)
        log.info("split %s into %d day files", source.name, frame[column].nunique())
        return len(self.days())

    def union(self) -> pd.DataFrame | None:
        """All day files as one table in canonical order (``None``: no files)."""
        # Cached frames are never changed: concat copies them.
        frames = [_read_day(self.path(day)) for day in self.days()]
        if not frames:
            return None
        # Empty days would only muddle the dtypes of the union.
        kept = [f for f in frames if len(f)] or frames[:1]
        union = pd.concat(kept, ignore_index=True)
        order = list(self.spec.sort_columns) or [self.spec.time_column]
        try:
            union = union.sort_values(order, kind="stable").reset_index(drop=True)
        except TypeError:
            # Mixed types in a key column: leave it to validation to say so.
            log.warning("could not sort the union by %s (mixed types)", order)
        return union

    def publish_union(self) -> pd.DataFrame | None:
        """Rewrite ``raw.parquet`` as the union (remove it when there is none).

        When day files disagree on a column's type (numbers in most, text in
        a bad delivery), parquet cannot hold the mix, so that column is stored
        as text: ``validate`` then names it instead of ``ingest`` crashing.
        """
        union = self.union()
        if union is None:
            self.raw_path.unlink(missing_ok=True)
            return None
        try:
            write_parquet(union, self.raw_path)
        except (ValueError, TypeError):
            log.warning("day files disagree on column types; storing them as text")
            write_parquet(_as_text_where_mixed(union), self.raw_path)
        return union

    def take_out(self, day: pd.Timestamp, destination: Path) -> Path | None:
        """Move one day's batch to ``destination`` (a file path), if stored."""
        path = self.path(day)
        if not path.is_file():
            return None
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), destination)
        return destination

    def restore_day(self, day: pd.Timestamp) -> bool:
        """Put back a day's rows from ``validated.parquet`` if it has that day.

        Returns:
            Whether the day was restored.
        """
        if not self.validated_path.is_file():
            return False
        validated = pd.read_parquet(self.validated_path)
        rows = validated[validated[self.spec.time_column].dt.normalize() == day]
        if rows.empty:
            return False
        self.write_day(day, rows)
        return True


# Hand-over records under <home>/state/<workload>/ that ingest and validate
# share: ingest.json (what the last ingestion added), validate.json (the last
# accepted batch, its used days and rows per day), rejected.json (the last
# refused batch).
INGESTED = "ingest.json"
ACCEPTED = "validate.json"
REJECTED = "rejected.json"


def read_state(path: Path) -> dict[str, Any]:
    """A hand-over record, or an empty dict when there is none yet."""
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def is_consumed(state_dir: Path, batch_id: str | None) -> bool:
    """Whether ``validate`` already accepted or refused this ingested batch."""
    if batch_id is None:
        return True
    seen = {
        read_state(state_dir / name).get("batch_id") for name in (ACCEPTED, REJECTED)
    }
    return batch_id in seen
