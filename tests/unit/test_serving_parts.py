"""The workload-free parts of the service: JSON values, tensors, batch lookups."""

from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel, ValidationError

from loopml.core.config import load_settings
from loopml.data.results import VERSION_KEY
from loopml.sdk.capabilities import Output, Scores
from loopml.serving.app import create_app
from loopml.serving.batches import BatchResults
from loopml.serving.metrics import observe_many
from loopml.serving.oip import _tensor, input_datatype
from loopml.serving.protocols import PredictResponse, json_response
from loopml.serving.scoring import Service, as_rows, per_row, plain, plain_column
from loopml.workloads.demand.serving import DemandRow


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


def test_batch_records_equal_the_rows_frame_as_plain_values(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["b", "a", "b", "a", "a", "c"],
            "rank": [2, 2, 1, 1, 3, 1],
            "item_id": ["i4", "i2", "i3", "i1", None, "i5"],
            "score": [0.5, float("nan"), 0.75, 1.0, 0.25, 2.0],
        }
    )
    _write(tmp_path, "2025-01-02", "1", frame)
    batch = BatchResults(tmp_path, key="user_id", order="rank").for_version("1")
    assert batch is not None
    names = ("rank", "item_id", "score")
    for key in ("a", "b", "c"):
        rows = batch.rows(key)
        assert rows is not None
        want = [tuple(r) for r in rows[list(names)].itertuples(index=False)]
        got = batch.records(key, names)
        assert got is not None and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0] and type(g[0]) is int
            assert g[1] == (None if pd.isna(w[1]) else w[1])
            assert g[2] == w[2] or (np.isnan(g[2]) and np.isnan(w[2]))
    first_two = batch.records("a", names, limit=2)
    assert first_two is not None and [r[:2] for r in first_two] == [
        (1, "i1"),
        (2, "i2"),
    ]
    assert first_two[0][2] == 1.0 and np.isnan(first_two[1][2])  # NaN stays NaN
    assert batch.records("zz", names) is None


_COLUMNS: list[list[Any]] = [
    ["S01", "S02"],
    [1, 2, None, True],
    [1.5, float("nan"), None, 3],
    [float("inf"), -0.0],
    [dt.date(2025, 1, 2), None, dt.datetime(2025, 1, 2, 3, 4, 5, 6)],
    [dt.datetime(2025, 1, 2, tzinfo=dt.UTC)],
    [np.float64(1.5), np.float64("nan"), np.int64(3), np.bool_(True)],
    [pd.Timestamp("2025-02-05 15:00"), pd.NaT, None],
    [[1, np.float32(0.5)], {"a": np.int8(1)}, (1, 2)],
    [np.array([1.0, np.nan]), "x", 1.0, dt.date(2025, 1, 1)],
    [],
]


@pytest.mark.parametrize("values", _COLUMNS)
def test_plain_column_is_plain_of_each_value(values: list[Any]) -> None:
    got = plain_column(values)
    want = [plain(v) for v in values]
    assert got == want
    assert [type(v) for v in got] == [type(v) for v in want]


def test_dates_written_again_come_from_memory_but_never_an_aware_ones() -> None:
    """Equal aware datetimes with other offsets keep their own ISO text."""
    utc = dt.datetime(2025, 1, 2, 0, 0, tzinfo=dt.UTC)
    plus_one = utc.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert utc == plus_one  # one instant, two texts
    naive = dt.datetime(2025, 1, 2, 1, 0)
    day = dt.date(2025, 1, 2)
    for _ in range(2):  # the second time from memory
        assert plain_column([day, naive, utc, None]) == [
            "2025-01-02",
            "2025-01-02T01:00:00",
            "2025-01-02T00:00:00+00:00",
            None,
        ]
        assert plain_column([plus_one, day]) == [
            "2025-01-02T01:00:00+01:00",
            "2025-01-02",
        ]


def test_per_row_makes_one_dict_per_row_in_column_order() -> None:
    scores = Scores(
        columns={
            "date": [dt.date(2025, 1, 2), dt.date(2025, 1, 3)],
            "forecast": [np.float64(1.5), float("nan")],
            "features": ["online", "model"],
        }
    )
    scorer = SimpleNamespace(outputs=[Output("forecast", "FP64")])
    assert per_row(scores, 2, scorer) == [  # type: ignore[arg-type]
        {"date": "2025-01-02", "forecast": 1.5, "features": "online"},
        {"date": "2025-01-03", "forecast": None, "features": "model"},
    ]


_CONTENTS: list[dict[str, Any]] = [
    {
        "model": "demand",
        "model_version": "3",
        "predictions": [
            {
                "store_id": "S01",
                "date": "2026-01-06",
                "horizon": 7,
                "forecast": 6.931074853217832,
                "features": "online",
                "sales_today": None,
            }
        ]
        * 28,
        "origin": "2025-12-30",
    },
    {
        "model": "m",
        "model_version": "1",
        "predictions": [
            {"y": 1e16, "z": 1.5e-7, "w": 0.0001, "big": 10**20, "neg": -0.0},
            {"y": float("inf"), "z": float("nan"), "w": 'é ☃ \u2028 "q" \\'},
            {"items": ["a", "b"], "nested": {"k": [1, None, True]}},
        ],
    },
    {"model": "m", "model_version": "1", "predictions": [], "extra": {"a": [1.25]}},
]


@pytest.mark.parametrize("content", _CONTENTS)
def test_json_response_sends_the_bytes_of_fastapis_response_model(
    content: dict[str, Any],
) -> None:
    app = FastAPI()
    app.post("/model", response_model=PredictResponse)(lambda: content)
    app.post("/direct", response_model=PredictResponse)(lambda: json_response(content))
    client = TestClient(app)
    old, new = client.post("/model"), client.post("/direct")
    assert old.status_code == new.status_code == 200
    assert new.content == old.content
    assert new.headers["content-type"] == old.headers["content-type"]


def test_json_response_leaves_unserializable_values_to_fastapi() -> None:
    content = {"model": "m", "model_version": "1", "predictions": [{"x": object()}]}
    assert json_response(content) is content


def _parse_one_by_one(row: type[BaseModel], records: list[Any]) -> Any:
    """What ``Service.parse`` did before: each record on its own."""
    rows, errors = [], []
    for i, record in enumerate(records):
        try:
            rows.append(row.model_validate(record))
        except ValidationError as error:
            for err in error.errors(include_url=False):
                errors.append({**err, "loc": ("body", "inputs", i, *err["loc"])})
    return errors or rows


_GOOD = {"store_id": "S01", "item_id": "I001", "date": "2026-01-06"}
_RECORDS: dict[str, list[Any]] = {
    "good": [_GOOD, {**_GOOD, "price": 2.5, "promo": 1}],
    "one bad field": [_GOOD, {**_GOOD, "price": -1}],
    "bad fields in rows": [
        {**_GOOD, "date": "soon", "promo": 3},
        _GOOD,
        {**_GOOD, "store_id": 5, "colour": "red"},
    ],
    "missing fields": [{}, {"store_id": "S01"}],
    "not objects": ["S01", None, [1, 2], 3.5, _GOOD],
    "NaN price": [{**_GOOD, "price": float("nan")}],
}


@pytest.mark.parametrize("name", list(_RECORDS))
def test_parse_validates_rows_as_one_by_one(name: str) -> None:
    records = _RECORDS[name]
    service = SimpleNamespace(
        settings=SimpleNamespace(serving=SimpleNamespace(max_rows=100)),
        scorers={"demand": SimpleNamespace(row=DemandRow)},
    )
    want = _parse_one_by_one(DemandRow, records)
    try:
        got = Service.parse(service, "demand", records, ("body", "inputs"))  # type: ignore[arg-type]
    except RequestValidationError as error:
        got = list(error.errors())
    if isinstance(want, list) and want and isinstance(want[0], dict):
        assert [{**e, "loc": tuple(e["loc"])} for e in got] == want, name
    else:
        assert got == want


@pytest.mark.parametrize("price", ["1e309", "-1e309", "Infinity", "NaN"])
def test_an_infinite_or_nan_price_is_refused_by_name(price: str) -> None:
    """JSON's 1e309 reads as infinity, which ``gt=0`` alone lets through."""
    body = '{"store_id": "S01", "item_id": "I001", "date": "2026-01-06", '
    with pytest.raises(ValidationError) as caught:
        DemandRow.model_validate_json(body + f'"price": {price}}}')
    [error] = caught.value.errors(include_url=False)
    assert error["loc"] == ("price",)
    assert error["type"] in {"finite_number", "greater_than"}, error
    assert DemandRow.model_validate_json(body + '"price": 1e300}').price == 1e300


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 0.5, 1.0, 3.0, 7.5, 1000.0, 2000.0, -1.0, float("nan"), None] * 3,
        [np.float32(2.5)] * 9 + [np.int64(4)],
        [1.0, 2.0],
        [0, 1, 2, 5, 10, 1000, float("inf"), -float("inf"), True],  # on the bounds
        [None, float("nan")],  # nothing to count
        [pd.NA, 1.0, None, float("nan"), 5.0, 6.0, 7.0, 8.0, 9.0],
    ],
)
def test_observe_many_counts_like_one_observe_each(values: list[Any]) -> None:
    buckets = (0, 1, 2, 5, 10, 1000)
    one, many = (
        Histogram("h", "h", buckets=buckets, registry=CollectorRegistry())
        for _ in range(2)
    )
    for value in values:
        if value is not None and value is not pd.NA and value == value:
            one.observe(float(value))
    observe_many(many, values)

    def samples(h: Histogram) -> dict[tuple[str, str], float]:
        family = next(iter(h.collect()))
        return {
            (s.name, s.labels.get("le", "")): s.value
            for s in family.samples
            if not s.name.endswith("_created")
        }

    got, want = samples(many), samples(one)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key


def test_the_service_freezes_its_start_up_heap_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc.freeze() once the champions are loaded (none here); undone at shutdown."""
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    app = create_app(load_settings("default", home=tmp_path))
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 0
        assert client.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(
    "names",
    [
        ["store_id", "forecast", "date"],
        ["quote'\"", "back\\slash", "new\nline", "é", "}]", "lambda: 0", ""],
        [f"c{i}" for i in range(80)],  # beyond the written functions
    ],
    ids=["plain", "odd-names", "many-columns"],
)
def test_as_rows_gives_one_dict_per_row_of_any_column_names(names: list[str]) -> None:
    columns = {name: [f"{i}-{j}" for j in range(5)] for i, name in enumerate(names)}
    want = [{name: columns[name][j] for name in names} for j in range(5)]
    got = as_rows(columns, 5)
    assert got == want
    assert [list(row) for row in got] == [names] * 5  # the columns' order
    with pytest.raises(ValueError, match="shorter"):
        as_rows({**columns, "short": ["x"]}, 5)
