"""The inference log's rows: what each served row becomes, field by field."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from pydantic import BaseModel

from loopml.monitoring import log_process
from loopml.monitoring.inference_log import (
    InferenceLog,
    _Entry,
    entries_frame,
    entries_table,
    entry_columns,
    entry_records,
    read_log,
    write_part,
)
from loopml.monitoring.log_process import InferenceLogProcess, decode, encode


class Row(BaseModel):
    store_id: str
    date: dt.date
    price: float
    tags: list[str] = []


def _expected(entry: _Entry) -> list[dict[str, Any]]:
    """The definition, one row at a time (what the writer used to run)."""
    out = []
    for row, output in zip(entry.inputs, entry.outputs, strict=True):
        given = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
        answer = output if isinstance(output, dict) else {"prediction": output}
        merged = {
            "ts": entry.ts,
            "request_id": entry.request_id,
            "workload": entry.workload,
            "source": entry.source,
            "model_version": entry.model_version,
            "latency_seconds": entry.latency_seconds,
            **given,
            **{k: v for k, v in answer.items() if k not in given},
        }
        out.append(
            {
                k: json.dumps(v, default=str) if isinstance(v, list | dict) else v
                for k, v in merged.items()
            }
        )
    return out


def _entry(inputs: list[Any], outputs: list[Any]) -> _Entry:
    now = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    return _Entry("demand", now, inputs, outputs, "3", 0.002, "online", "abc")


@pytest.mark.parametrize("n", [1, 28])
def test_pydantic_rows_and_dict_outputs(n: int) -> None:
    rows = [
        Row(store_id=f"S{i}", date=dt.date(2025, 1, 1 + i), price=1.5 * i, tags=["a"])
        for i in range(n)
    ]
    outputs = [
        {"store_id": "ignored", "forecast": 2.0 * i, "features": {"lag_7": i}}
        for i in range(n)
    ]
    records = entry_records(_entry(rows, outputs))
    assert records == _expected(_entry(rows, outputs))
    assert list(records[0]) == [
        *("ts", "request_id", "workload", "source", "model_version"),
        *("latency_seconds", "store_id", "date", "price", "tags"),
        *("forecast", "features"),
    ]
    assert records[0]["date"] == "2025-01-01"  # JSON mode, as before
    assert records[0]["tags"] == '["a"]'
    assert records[-1]["store_id"] == f"S{n - 1}"  # the input wins


def test_mappings_scalars_and_mixed_models() -> None:
    class Other(BaseModel):
        user_id: str

    inputs: list[Any] = [{"user_id": "u1", "k": 3}, Other(user_id="u2")]
    outputs: list[Any] = [0.5, {"item_ids": ["c1", "c2"], "source": "live"}]
    assert entry_records(_entry(inputs, outputs)) == _expected(_entry(inputs, outputs))


def test_rows_and_outputs_must_pair() -> None:
    with pytest.raises(ValueError):
        entry_records(_entry([{"a": 1}], []))


class Demand(BaseModel):
    store_id: str
    date: dt.date
    price: float | None = None
    source: str = "app"  # an input named like a log column keeps its value


def _demand(n: int, shift: int = 0) -> _Entry:
    rows = [
        Demand(store_id=f"S{i}", date=dt.date(2025, 1, 1 + i), price=i or None)
        for i in range(n)
    ]
    outputs: list[Any] = [
        {
            "store_id": "ignored",
            "forecast": float("nan") if i == 1 else 0.5 * i + shift,
            "origin": "2024-12-31",
            "sales_today_as_of": None if i % 2 else "2024-12-31T00:00:00",
            "model_version": "from the output",  # a log column the input lacks
            "items": ["a", i],
        }
        for i in range(n)
    ]
    return _entry(rows, outputs)


_GROUPS: dict[str, list[_Entry]] = {
    "one request": [_demand(28)],
    "one row": [_demand(1)],
    "requests alike": [_demand(28), _demand(1, shift=3), _demand(5)],
    "fields differ between requests": [
        _demand(2),
        _entry([{"user_id": "u1", "k": 3}], [{"item_ids": ["c1"], "score": 1.0}]),
    ],
    "fields differ within a request": [
        _entry([{"a": 1}, {"a": 2, "b": 3}], [0.5, 0.25]),
        _demand(3),
    ],
    "scalars and models mixed": [
        _entry(
            [{"user_id": "u1"}, Row(store_id="S", date=dt.date(2025, 1, 1), price=1)],
            [0.5, {"prediction": 2}],
        ),
    ],
}


@pytest.mark.parametrize("name", list(_GROUPS))
def test_the_written_frame_is_the_records_frame(name: str) -> None:
    entries = _GROUPS[name]
    records = [r for entry in entries for r in entry_records(entry)]
    got = entries_frame(entries)
    want = pd.DataFrame.from_records(records)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for column in want:  # the same Python objects, not just equal ones
        assert [type(v) for v in got[column]] == [type(v) for v in want[column]]


@pytest.mark.parametrize("n", [1, 28])
def test_columns_are_the_records_transposed(n: int) -> None:
    entry = _demand(n)
    columns = entry_columns(entry)
    records = entry_records(entry)
    assert columns is not None and list(columns) == list(records[0])
    rows = zip(*columns.values(), strict=True)
    assert [dict(zip(columns, row, strict=True)) for row in rows] == records
    assert columns["source"] == ["app"] * n and columns["store_id"][0] == "S0"
    assert columns["model_version"] == ["from the output"] * n


def test_uneven_rows_give_no_columns() -> None:
    assert entry_columns(_entry([{"a": 1}, {"b": 2}], [1.0, 2.0])) is None
    assert entry_columns(_entry([{"a": 1}], [])) is None


def _columnar(entry: _Entry) -> _Entry:
    """The same entry with its outputs as columns (what the service hands over)."""
    outputs = list(entry.outputs)
    names = list(outputs[0])
    columns = {name: [o[name] for o in outputs] for name in names}
    return dataclasses.replace(entry, outputs=columns)


@pytest.mark.parametrize("n", [1, 28])
def test_columnar_outputs_give_the_same_records(n: int) -> None:
    entry = _demand(n)
    assert entry_records(_columnar(entry)) == entry_records(entry)
    assert entry_columns(_columnar(entry)) == entry_columns(entry)


@pytest.mark.parametrize("name", list(_GROUPS))
def test_the_written_table_reads_back_as_the_frame_did(
    name: str, tmp_path: Path
) -> None:
    """The writer's Arrow table makes the file the pandas frame made."""
    entries = _GROUPS[name]
    entries = [
        *entries,
        *(
            _columnar(e)
            for e in entries
            if e.outputs
            and all(isinstance(o, dict) for o in e.outputs)
            and len({tuple(o) for o in e.outputs}) == 1
        ),
    ]
    day = dt.date(2025, 3, 1)
    old = pd.read_parquet(
        write_part(tmp_path / "frame", "w", day, entries_frame(entries))
    )
    new = pd.read_parquet(
        write_part(tmp_path / "table", "w", day, entries_table(entries))
    )
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert str(new["ts"].dtype) == "datetime64[ns, UTC]"


def test_the_writer_pauses_between_pieces_and_writes_the_same_table() -> None:
    """The writer yields the GIL after each entry and column (same table)..."""
    entries = [_demand(28), _demand(5, shift=1)]
    calls: list[None] = []
    paused = entries_table(entries, pause=lambda: calls.append(None))
    pd.testing.assert_frame_equal(  # NaN forecasts: Table.equals says differ
        paused.to_pandas(), entries_table(entries).to_pandas(), check_exact=True
    )
    n_columns = paused.num_columns
    # ... and after every 32 nested values dumped: one such column, 33 rows.
    assert len(calls) == len(entries) + 2 * n_columns + 2


def test_a_column_arrow_cannot_type_fails_as_the_frame_did(tmp_path: Path) -> None:
    """Text and numbers mixed in a column: refused as pandas' writer refused
    it (the writer logs that and counts the rows as dropped)."""
    entries = [
        _entry([{"user_id": "u1"}], [{"label": "high"}]),
        _entry([{"user_id": "u2"}], [{"label": 3}]),
    ]
    with pytest.raises(pa.ArrowTypeError, match="label"):
        entries_frame(entries).to_parquet(tmp_path / "frame.parquet")
    with pytest.raises(pa.ArrowTypeError, match="label"):
        entries_table(entries)


# The writer process (serving.inference_log_writer: process) ----------------


@pytest.mark.parametrize("name", list(_GROUPS))
def test_entries_sent_to_the_writer_process_make_the_same_file(
    name: str, tmp_path: Path
) -> None:
    """An entry as JSON through the pipe writes the file the thread wrote."""
    entries = _GROUPS[name]
    received = []
    for entry in entries:
        data = encode(entry)
        assert int.from_bytes(data[:4], "little") == len(data) - 4
        received.append(decode(data[4:]))
    day = dt.date(2025, 3, 1)
    here = pd.read_parquet(write_part(tmp_path / "a", "w", day, entries_table(entries)))
    there = pd.read_parquet(
        write_part(tmp_path / "b", "w", day, entries_table(received))
    )
    pd.testing.assert_frame_equal(there, here, check_exact=True)


def _log_requests(log: InferenceLog, n: int) -> int:
    """Log ``n`` demand and ``n`` recsys requests as the service does; rows."""
    for i in range(n):
        entry = _demand(1 + i % 4, shift=i)
        log.log("demand", entry.inputs, entry.outputs, "3", time.perf_counter())
        log.log(
            "recsys",
            [{"user_id": f"u{i}", "k": 2, "segment": None}],
            {"item_ids": [["c1", "c2"]], "scores": [[0.5, float("nan")]]},
            "1",
            time.perf_counter(),
        )
    return sum(1 + i % 4 for i in range(n)) + n


def _wait_written(log: InferenceLog, rows: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while log.rows_written < rows and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.rows_written == rows


_PER_REQUEST = ["ts", "request_id", "latency_seconds"]


def test_the_writer_process_writes_what_the_thread_writes(tmp_path: Path) -> None:
    logs = {
        "thread": InferenceLog(tmp_path / "thread", flush_seconds=0.1),
        "process": InferenceLogProcess(tmp_path / "process", flush_seconds=0.1),
    }
    for log in logs.values():
        log.start()
        rows = _log_requests(log, 30)
        log.close()
        assert (log.rows_written, log.dropped) == (rows, 0)
    for workload in ("demand", "recsys"):
        want, got = (read_log(log.root, workload) for log in logs.values())
        assert len(got) == len(want) > 0
        assert str(got["ts"].dtype) == "datetime64[ns, UTC]"
        pd.testing.assert_frame_equal(
            got.drop(columns=_PER_REQUEST),
            want.drop(columns=_PER_REQUEST),
            check_exact=True,
        )


def _child_pid(log: InferenceLogProcess) -> int:
    child = log._child
    assert child is not None
    return child.process.pid


def test_a_dead_writer_process_is_replaced_and_nothing_goes_uncounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_process, "RESTART_SECONDS", 0.0)
    log = InferenceLogProcess(tmp_path, flush_seconds=0.1)
    log.start()
    first = _log_requests(log, 5)
    _wait_written(log, first)
    dead = _child_pid(log)
    os.kill(dead, signal.SIGKILL)
    time.sleep(0.2)  # dead before the next entries are handed over
    later = _log_requests(log, 5)
    _wait_written(log, first + later)
    assert _child_pid(log) != dead
    log.close()
    assert (log.rows_written, log.dropped) == (first + later, 0)
    on_disk = len(read_log(tmp_path, "demand")) + len(read_log(tmp_path, "recsys"))
    assert on_disk == first + later


def test_the_writer_process_writes_everything_when_the_service_is_gone(
    tmp_path: Path,
) -> None:
    """A service killed outright closes both pipes: the child still writes it all.

    It reports after each part; with nobody reading, a report fails (a
    broken pipe), and that must not stop the writing.
    """
    child = subprocess.Popen(  # noqa: S603 - our own module, no shell
        [sys.executable, "-m", log_process.__name__, str(tmp_path)]
        + ["--flush-rows", "10"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().split() == [b"0", b"0"]  # ready
    child.stdout.close()  # the service is gone: nobody reads the counts
    entries = [
        dataclasses.replace(
            _entry([{"x": float(i)}] * 10, [{"y": 1.0}] * 10), request_id=str(i)
        )
        for i in range(50)
    ]
    child.stdin.write(b"".join(encode(e) for e in entries))
    child.stdin.close()
    assert child.wait(60) == 0
    assert child.stderr is not None
    assert b"Traceback" not in child.stderr.read()
    written = read_log(tmp_path, "demand")
    assert len(written) == 500
    assert sorted(set(written["request_id"]), key=int) == [str(i) for i in range(50)]


def test_the_writer_process_ignores_ctrl_c_and_stops_at_close(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the service; the writer waits for close."""
    log = InferenceLogProcess(tmp_path, flush_seconds=60)  # nothing written yet
    log.start()
    rows = _log_requests(log, 3)
    deadline = time.monotonic() + 30
    while log._child is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child = log._child
    assert child is not None and child.ready.wait(30)
    os.kill(child.process.pid, signal.SIGINT)
    time.sleep(0.5)
    assert child.process.poll() is None
    log.close()
    assert child.process.returncode == 0
    assert (log.rows_written, log.dropped) == (rows, 0)


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    log = InferenceLogProcess(tmp_path, max_queue=2)  # not started: nothing drains
    entry = _demand(3)
    taken = [
        log.log("demand", entry.inputs, entry.outputs, "3", time.perf_counter())
        for _ in range(3)
    ]
    assert taken == [True, True, False] and log.dropped == 1
    log.close()  # hands over what waited, from here
    assert log.rows_written == 6 and len(read_log(tmp_path, "demand")) == 6


def test_a_damaged_log_part_is_named(tmp_path: Path) -> None:
    """pyarrow said "Could not open Parquet input source '<Buffer>'"."""
    from loopml.monitoring.inference_log import partition, read_log, write_part

    day = dt.date(2025, 3, 1)
    write_part(tmp_path, "demand", day, pd.DataFrame({"x": [1.0]}))
    bad = partition(tmp_path, "demand", day) / "part-zzz.parquet"
    bad.write_bytes(b"PAR1 cut short")
    with pytest.raises(ValueError, match="damaged inference-log part") as caught:
        read_log(tmp_path, "demand")
    assert str(bad) in str(caught.value)
    bad.unlink()
    assert read_log(tmp_path, "demand")["x"].tolist() == [1.0]
