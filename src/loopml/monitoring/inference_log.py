"""The inference log: every prediction served, kept as date-partitioned parquet.

Layout, one folder per workload and UTC day of the prediction::

    <home>/inference/<workload>/date=YYYY-MM-DD/part-<time>-<pid>-<n>.parquet

One row per predicted row: ``ts`` (UTC), ``request_id``, ``workload``,
``source`` (``online``, ``batch``, ``replay``), ``model_version``,
``latency_seconds`` (of the whole request; the service's fast lane logs
after sending its answer, so its entries count the sending too), the input
fields, then the output fields the input does not already have (demand:
``horizon``, ``forecast``, ``origin``, ``features``...). Nested values are
stored as JSON text.

The request only puts a reference to its rows on a bounded queue
(:meth:`InferenceLog.log`, a few microseconds); a background thread turns
them into rows and writes a part file every ``flush_seconds`` or
``flush_rows``. :meth:`InferenceLog.close` drains the queue and writes the
rest, so a clean shutdown loses nothing. When the queue is full (the disk
cannot keep up), the request is not slowed down: the entry is dropped and
counted in :attr:`InferenceLog.dropped`. The service writes through
:class:`loopml.monitoring.log_process.InferenceLogProcess` by default: the
same queue and files, the writing done by a child process.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import TypeAdapter

from loopml.core.io import write_parquet

log = logging.getLogger(__name__)

PREFIX = "date="
_STOP = object()


@dataclass(frozen=True)
class _Entry:
    """One request's predictions, as the request handed them over."""

    workload: str
    ts: dt.datetime
    inputs: Sequence[Any]
    #: One output per row, or columns (name -> one value per row).
    outputs: Sequence[Any] | Mapping[str, Sequence[Any]]
    model_version: str
    latency_seconds: float
    source: str
    request_id: str


def _as_dict(value: Any) -> dict[str, Any]:
    if hasattr(value, "model_dump"):
        dumped: dict[str, Any] = value.model_dump(mode="json")
        return dumped
    if isinstance(value, Mapping):
        return dict(value)
    return {"prediction": value}


@functools.lru_cache(maxsize=64)
def _list_adapter(model: type) -> TypeAdapter[list[Any]]:
    """Dumps a list of one pydantic model in one call (cached per model)."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _as_dicts(
    values: Sequence[Any] | Mapping[str, Sequence[Any]],
) -> list[dict[str, Any]]:
    """:func:`_as_dict` of each value; a list of one pydantic model at once.

    A mapping is columns (name -> one value per row): one dict per row.
    """
    if isinstance(values, Mapping):
        names = list(values)
        return [
            dict(zip(names, row, strict=True))
            for row in zip(*values.values(), strict=True)
        ]
    kind: type = type(values[0]) if values else type(None)
    alike = all(type(value) is kind for value in values)
    if alike and kind is dict:  # the service's outputs: read, never changed
        return list(values)
    if alike and hasattr(kind, "model_dump"):
        dumped: list[dict[str, Any]] = _list_adapter(kind).dump_python(
            list(values), mode="json"
        )
        return dumped
    return [_as_dict(value) for value in values]


#: Values :func:`_dump_nested` turns into JSON text between two pauses.
DUMPS_PER_PAUSE = 32

#: Nested values are stored as JSON text (one parquet type per column).
_NESTED = (list, tuple, dict)


def entry_records(entry: _Entry) -> list[dict[str, Any]]:
    """The rows of one logged request, one per predicted row.

    Runs in the writer thread for every row served, so it avoids per-value
    work where it can (a served process spends a quarter of its CPU here
    otherwise at 28 rows a request).
    """
    meta = {
        "ts": entry.ts,
        "request_id": entry.request_id,
        "workload": entry.workload,
        "source": entry.source,
        "model_version": entry.model_version,
        "latency_seconds": entry.latency_seconds,
    }
    inputs = _as_dicts(entry.inputs)
    outputs = _as_dicts(entry.outputs)
    records = []
    for given, output in zip(inputs, outputs, strict=True):
        record = {**meta, **given}
        for key, value in output.items():
            if key not in given:
                record[key] = value
        for key, value in record.items():
            if isinstance(value, _NESTED):
                record[key] = json.dumps(value, default=str)
        records.append(record)
    return records


def entry_columns(entry: _Entry) -> dict[str, list[Any]] | None:
    """:func:`entry_records` as columns, one list per field; None when uneven.

    The same fields, order and values as the records (a request's rows all
    have the same fields): the writer builds its table from these lists
    instead of a dict per row. Rows whose inputs or outputs differ in their
    fields give None (the caller takes the records).
    """
    columns = _columns(entry)
    if columns is None:
        return None
    return {key: _dump_nested(values) for key, values in columns.items()}


def _dump_nested(
    values: Sequence[Any], pause: Callable[[], None] | None = None
) -> list[Any]:
    """``values`` with each list, tuple or dict as JSON text.

    ``pause`` runs after every :data:`DUMPS_PER_PAUSE` values dumped (about
    0.5 ms of ``json.dumps`` for a recommendation list of 20 items).
    """
    if not any(issubclass(kind, _NESTED) for kind in set(map(type, values))):
        return list(values)
    out = []
    for start in range(0, len(values), DUMPS_PER_PAUSE):
        out += [
            json.dumps(v, default=str) if isinstance(v, _NESTED) else v
            for v in values[start : start + DUMPS_PER_PAUSE]
        ]
        if pause is not None:
            pause()
    return out


def _columns(entry: _Entry) -> dict[str, Sequence[Any]] | None:
    """:func:`entry_columns` before nested values become JSON text.

    The lists may be the entry's own (the caller must not change them).
    """
    inputs = _as_dicts(entry.inputs)
    by_column = isinstance(entry.outputs, Mapping)  # the service's answers
    outputs: Any = entry.outputs if by_column else _as_dicts(entry.outputs)
    n = len(inputs)
    if by_column:
        if any(len(values) != n for values in outputs.values()):
            return None
    elif (
        not inputs or len(inputs) != len(outputs) or len(set(map(tuple, outputs))) != 1
    ):
        return None
    # One tuple of fields each, in the same order (compared in C).
    if not inputs or len(set(map(tuple, inputs))) != 1:
        return None
    given, answered = list(inputs[0]), list(outputs if by_column else outputs[0])

    def answer(key: str) -> Sequence[Any]:
        return outputs[key] if by_column else [d[key] for d in outputs]

    meta = {
        "ts": entry.ts,
        "request_id": entry.request_id,
        "workload": entry.workload,
        "source": entry.source,
        "model_version": entry.model_version,
        "latency_seconds": entry.latency_seconds,
    }
    # A record is {**meta, **given} plus the answer's fields the input lacks.
    taken = set(given)
    columns: dict[str, Sequence[Any]] = {}
    for key, value in meta.items():
        if key in taken:
            columns[key] = [d[key] for d in inputs]
        elif key in answered:
            columns[key] = answer(key)
        else:
            columns[key] = [value] * n
    for key in given:
        if key not in columns:
            columns[key] = [d[key] for d in inputs]
    for key in answered:
        if key not in taken and key not in meta:
            columns[key] = answer(key)
    return columns


def _no_pause() -> None:
    """Keep going (outside the writer thread nobody waits)."""


def yield_gil() -> None:
    """Let a waiting thread take the GIL now (``time.sleep(0)`` releases it).

    The writer calls this between small pieces of work: a request thread
    that wakes from I/O then waits microseconds for the GIL, not the
    interpreter's switch interval (5 ms) for each piece.
    """
    time.sleep(0)


def _joined(
    entries: Sequence[_Entry], pause: Callable[[], None] = _no_pause
) -> dict[str, list[Any]] | None:
    """Every entry's columns end to end (nested values as JSON text), or None
    when an entry is uneven or the entries' fields differ.

    ``pause`` runs after each entry and each column.
    """
    parts = []
    for entry in entries:
        parts.append(_columns(entry))
        pause()
    first = parts[0] if parts else None
    if first is None or any(p is None or list(p) != list(first) for p in parts):
        return None
    joined = {}
    for key in first:
        values = itertools.chain.from_iterable(p[key] for p in parts)  # type: ignore[index]
        joined[key] = _dump_nested(list(values), pause)
        pause()
    return joined


def entries_frame(entries: Sequence[_Entry]) -> pd.DataFrame:
    """The inference-log rows of ``entries`` as one frame, oldest first.

    ``pd.DataFrame.from_records`` of every :func:`entry_records`, built from
    columns when every entry has the same fields.
    """
    columns = _joined(entries)
    if columns is None:
        records = [r for entry in entries for r in entry_records(entry)]
        return pd.DataFrame.from_records(records)
    return pd.DataFrame(columns)


def entries_table(
    entries: Sequence[_Entry], pause: Callable[[], None] = _no_pause
) -> pa.Table:
    """:func:`entries_frame` as the Arrow table its parquet file holds.

    Built from the columns by Arrow without a pandas frame (the writer
    thread shares the GIL with the requests; pandas' object columns cost it
    several times more). The file reads back as the frame's would: ``ts``
    as nanoseconds in UTC, a missing number as NaN. A column Arrow cannot
    type alone (e.g. text and numbers mixed) goes the frame's way, which
    refuses it as it always did (the writer logs it, counting the rows as
    dropped).
    ``pause`` runs between pieces of the work (see :func:`yield_gil`).
    """
    columns = _joined(entries, pause)
    if columns is None:
        frame = entries_frame(entries)  # fields differ: from the records
    else:
        try:
            arrays = {}
            for key, values in columns.items():
                arrays[key] = pa.array(values)
                pause()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            frame = pd.DataFrame(columns)  # entries_frame's, not joined again
        else:
            ts = arrays.get("ts")
            if ts is not None and pa.types.is_timestamp(ts.type):
                arrays["ts"] = ts.cast(pa.timestamp("ns", tz=ts.type.tz))
            return pa.table(arrays)
    return pa.Table.from_pandas(frame, preserve_index=False)


def partition(root: Path, workload: str, day: dt.date) -> Path:
    """The folder of one workload's predictions of one UTC day."""
    if isinstance(day, dt.datetime):  # a timestamp would name the folder by time
        day = day.date()
    return root / workload / f"{PREFIX}{day.isoformat()}"


_counter = itertools.count()


def write_part(
    root: Path, workload: str, day: dt.date, frame: pd.DataFrame | pa.Table
) -> Path:
    """Write one part file atomically into the day's partition.

    Also the way to log batch results in one go (no queue needed).
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%H%M%S%f")
    name = f"part-{stamp}-{os.getpid()}-{next(_counter)}.parquet"
    path = partition(root, workload, day) / name
    write_parquet(frame, path)
    return path


def _read_part(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:  # pyarrow's message names no file
        raise ValueError(
            f"{path} is a damaged inference-log part ({error}); move it out of "
            "the log folder to read the rest"
        ) from error


def read_log(
    root: Path,
    workload: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """Every logged row of ``workload`` in partitions ``since..until`` (inclusive).

    Returns:
        The rows, oldest part first; an empty frame when nothing was logged.

    Raises:
        ValueError: a part that is not a readable parquet file, named (parts
            are written whole, so only a damaged disk or a hand edit makes one).
    """
    folder = root / workload
    frames: list[pd.DataFrame] = []
    for part in sorted(folder.glob(f"{PREFIX}*")):
        try:
            day = dt.date.fromisoformat(part.name.removeprefix(PREFIX))
        except ValueError:
            log.warning("skipped %s: not a date=YYYY-MM-DD partition", part)
            continue
        if (since and day < since) or (until and day > until):
            continue
        frames.extend(_read_part(p) for p in sorted(part.glob("part-*.parquet")))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


class InferenceLog:
    """A bounded queue of predictions and the thread that writes them out."""

    def __init__(
        self,
        root: Path,
        max_queue: int = 10_000,
        flush_rows: int = 5_000,
        flush_seconds: float = 1.0,
    ) -> None:
        """Log under ``root`` (``<home>/inference``); nothing starts yet.

        Args:
            root: the folder holding one sub-folder per workload.
            max_queue: requests waiting at most; more are dropped and counted.
            flush_rows: write a part once this many rows are waiting.
            flush_seconds: write what is waiting at least this often.
        """
        self.root = root
        self.max_queue = max_queue
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.rows_written = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the writer thread (once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="inference-log", daemon=True
                )
                self._thread.start()

    def log(
        self,
        workload: str,
        inputs: Sequence[Any],
        outputs: Sequence[Any] | Mapping[str, Sequence[Any]],
        model_version: str,
        started: float,
        source: str = "online",
    ) -> bool:
        """Hand one request's predictions to the writer; never blocks.

        Args:
            workload: the workload that answered.
            inputs: the request rows (pydantic models or mappings).
            outputs: one output per row (models, mappings or scalars), or
                JSON-ready columns (name -> one value per row).
            model_version: the registry version that answered.
            started: ``time.perf_counter()`` when the request began.
            source: ``online`` for the API; batch jobs name themselves.

        Returns:
            Whether the entry was queued (``False``: the queue was full).
        """
        entry = _Entry(
            workload,
            dt.datetime.now(dt.UTC),
            inputs,
            outputs,
            model_version,
            time.perf_counter() - started,
            source,
            uuid.uuid4().hex,
        )
        if self._put(entry):
            return True
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("inference log queue full: %d dropped", self.dropped)
        return False

    def _put(self, entry: _Entry) -> bool:
        """Queue one entry without waiting; False when the queue is full."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            return False
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Write everything still queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            self._drain_now()
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error("the inference log writer did not stop in %.0fs", timeout)

    def _drain_now(self) -> None:
        entries = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                entries.append(item)
        self._write(entries)

    def _run(self) -> None:
        pending: list[_Entry] = []
        rows = 0
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                item = None
            stop = item is _STOP
            if isinstance(item, _Entry):
                pending.append(item)
                rows += len(item.inputs)
            due = time.monotonic() >= deadline or rows >= self.flush_rows
            if pending and (due or stop):
                self._write(pending)
                pending, rows = [], 0
            if due:
                deadline = time.monotonic() + self.flush_seconds
            if stop:
                self._drain_now()
                return

    def _write(self, entries: list[_Entry]) -> None:
        groups: dict[tuple[str, dt.date], list[_Entry]] = {}
        for entry in entries:
            if len(entry.inputs):
                key = (entry.workload, entry.ts.date())
                groups.setdefault(key, []).append(entry)
        for (workload, day), group in groups.items():
            rows = sum(len(entry.inputs) for entry in group)
            try:
                write_part(self.root, workload, day, entries_table(group, yield_gil))
            except Exception:  # a full disk must not kill the writer thread
                log.exception("could not write %d inference rows", rows)
                self.dropped += rows
                continue
            self.rows_written += rows
