"""The workload-free parts of the service: JSON values, tensors, batch lookups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.data.results import VERSION_KEY
from loopml.sdk.capabilities import Output
from loopml.serving.batches import BatchResults
from loopml.serving.oip import _tensor, input_datatype
from loopml.serving.scoring import plain


def test_plain_makes_json_values() -> None:
    assert plain(np.float64(1.5)) == 1.5 and type(plain(np.int64(2))) is int
    assert plain(float("nan")) is None and plain(pd.NaT) is None
    assert plain(pd.Timestamp("2025-02-05 15:00")) == "2025-02-05T15:00:00"
    assert plain(dt.date(2025, 2, 5)) == "2025-02-05"
    assert plain(np.array([1, 2])) == [1, 2]
    assert plain({"a": [np.float32(0.5), None]}) == {"a": [0.5, None]}


def test_input_datatypes_follow_the_row_annotations() -> None:
    assert input_datatype(str) == "BYTES"
    assert input_datatype(dt.date) == "BYTES"
    assert input_datatype(float | None) == "FP64"
    assert input_datatype(int | None) == "INT64"
    assert input_datatype(Literal[0, 1]) == "INT64"
    assert input_datatype(bool) == "BOOL"


def test_list_outputs_are_n_by_m_tensors_padded_with_nulls() -> None:
    scalar = _tensor(Output("y", "FP64"), [1.0, 2.0])
    assert scalar["shape"] == [2] and scalar["data"] == [1.0, 2.0]
    lists = _tensor(Output("ids", "BYTES", per_row=0), [["a", "b"], ["c"]])
    assert lists["shape"] == [2, 2]
    assert lists["data"] == ["a", "b", "c", None]
    fixed = _tensor(Output("top", "INT64", per_row=1), [[1, 2], [3]])
    assert fixed["shape"] == [2, 1] and fixed["data"] == [1, 3]


def _write(folder: Path, day: str, version: str, frame: pd.DataFrame) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({VERSION_KEY: version.encode()})
    path = folder / f"date={day}.parquet"
    pq.write_table(table, path)
    return path


def test_batch_results_serve_the_newest_file_of_the_version(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"user_id": ["b", "a", "b", "a", "c"], "rank": [2, 2, 1, 1, 1]}
        | {"item_id": ["i4", "i2", "i3", "i1", "i5"]}
    )
    results = BatchResults(tmp_path, key="user_id", order="rank")
    assert results.for_version("1") is None  # no file yet
    _write(tmp_path, "2025-01-02", "1", frame)
    _write(tmp_path, "2025-01-03", "2", frame.head(1))  # another version's
    batch = results.for_version("1")
    assert batch is not None
    assert (batch.day, batch.version, batch.per_key) == (dt.date(2025, 1, 2), "1", 2)
    rows = batch.rows("a")
    assert rows is not None and rows["item_id"].tolist() == ["i1", "i2"]
    assert batch.rows("c")["item_id"].tolist() == ["i5"]  # type: ignore[index]
    assert batch.rows("zz") is None and batch.rows("0") is None
    assert results.for_version("1") is batch  # read once per file
    _write(tmp_path, "2025-01-04", "1", frame.head(2))
    newer = results.for_version("1")
    assert newer is not None and newer.day == dt.date(2025, 1, 4)
    assert newer.rows("a") is not None and newer.rows("c") is None
