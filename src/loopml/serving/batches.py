"""Daily batch results for online lookups: the newest file of the served version.

``loopml batch`` writes ``<home>/batch/<workload>/date=YYYY-MM-DD.parquet``
with the writing model version in its metadata (``loopml.data.results``).
:class:`BatchResults` finds the newest file written by the version being
served, reads it once into memory (sorted by the lookup key, then the order
column) and reads it again only when a newer file appears or the file
changes, so a new batch is served without a restart. :class:`Batch` answers
the rows of one key with a binary search.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.data.results import PREFIX, SUFFIX, file_day, file_version

log = logging.getLogger(__name__)

#: A result file as listed: (name, mtime in ns, size).
_FileKey = tuple[str, int, int]


@dataclass(frozen=True)
class Batch:
    """One day's results sorted by key (then order), as column arrays.

    Implements :class:`loopml.sdk.capabilities.BatchIndex`.
    """

    day: dt.date
    version: str
    per_key: int
    keys: npt.NDArray[Any]
    starts: npt.NDArray[np.int64]
    frame: pd.DataFrame
    #: Columns as Python lists, made on first use by :meth:`records`.
    _lists: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, path: Path, version: str, key: str, order: str | None) -> Batch:
        """Load a result file for lookups by ``key``, rows in ``order``."""
        frame = pd.read_parquet(path)
        by = [key] if order is None else [key, order]
        frame = frame.sort_values(by, kind="stable").reset_index(drop=True)
        keys, starts, counts = np.unique(
            frame[key].astype(str).to_numpy(dtype=object),
            return_index=True,
            return_counts=True,
        )
        per_key = int(counts.max()) if len(counts) else 0
        return cls(
            file_day(path), version, per_key, keys, starts.astype(np.int64), frame
        )

    def _span(self, key: str) -> tuple[int, int] | None:
        """Where the rows of ``key`` are in the frame (a binary search)."""
        at = int(np.searchsorted(self.keys, key))
        if at == len(self.keys) or self.keys[at] != key:
            return None
        stop = self.starts[at + 1] if at + 1 < len(self.starts) else len(self.frame)
        return int(self.starts[at]), int(stop)

    def rows(self, key: str) -> pd.DataFrame | None:
        """The rows of ``key`` in order, or ``None`` when the batch lacks it."""
        span = self._span(key)
        return None if span is None else self.frame.iloc[span[0] : span[1]]

    def records(
        self, key: str, columns: Sequence[str], limit: int | None = None
    ) -> list[tuple[Any, ...]] | None:
        """The first ``limit`` rows of ``key`` as tuples of ``columns``.

        Plain Python values (a missing value is ``None``; NaN in a float
        column stays NaN) from lists made once per column, so a lookup
        builds no frame: the online path's way. A user's 10 recsys rows:
        6.7 us, against 0.70 ms through ``rows`` and ``itertuples``
        (measured in process, best of 3 x 2,000).
        """
        span = self._span(key)
        if span is None:
            return None
        start, stop = span
        if limit is not None:
            stop = min(stop, start + limit)
        lists = []
        for name in columns:
            values = self._lists.get(name)
            if values is None:
                column = self.frame[name]
                if column.dtype.kind == "f":
                    values = column.tolist()
                else:
                    values = column.astype(object).where(column.notna(), None).tolist()
                self._lists[name] = values
            lists.append(values[start:stop])
        return list(zip(*lists, strict=True))


class BatchResults:
    """The newest batch file of a version in one folder, read once per file."""

    def __init__(self, folder: Path, key: str, order: str | None = None) -> None:
        """Watch ``folder`` (``<home>/batch/<workload>``).

        Args:
            folder: the workload's result files.
            key: the lookup column.
            order: the column a key's rows are sorted by.
        """
        self.folder = folder
        self.key = key
        self.order = order
        self._versions: dict[_FileKey, str | None] = {}
        self._batch: Batch | None = None
        self._file: _FileKey | None = None
        self._lock = threading.Lock()

    def _files(self) -> list[_FileKey]:
        """Every result file, newest day first."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in self.folder.iterdir():
            name = entry.name
            if name.startswith(PREFIX) and name.endswith(SUFFIX):
                stat = entry.stat()
                found.append((name, stat.st_mtime_ns, stat.st_size))
        return sorted(found, reverse=True)

    def in_memory(self, version: str) -> bool:
        """Whether :meth:`for_version` would answer without reading a file."""
        for file in self._files():
            if file not in self._versions:  # not looked into yet
                return False
            written_by = self._versions[file]
            if written_by == version:
                return self._file == file and self._batch is not None
        return True

    def for_version(self, version: str) -> Batch | None:
        """The newest batch written by ``version``, or ``None``.

        A directory listing per call; a file is read only when it is new or
        changed, so batches land without a restart.
        """
        for file in self._files():
            if file not in self._versions:
                try:
                    self._versions[file] = file_version(self.folder / file[0])
                except OSError:  # replaced while we looked: the next call sees it
                    continue
            if self._versions[file] != version:
                continue
            batch = self._batch
            if self._file == file and batch is not None:
                return batch
            with self._lock:
                if self._file != file or self._batch is None:
                    path = self.folder / file[0]
                    self._batch = Batch.read(path, version, self.key, self.order)
                    self._file = file
                    log.info("serving batch %s (version %s)", path, version)
                return self._batch
        return None
