"""The inference log's rows: what each served row becomes, field by field."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel

from loopml.monitoring.inference_log import _Entry, entry_records


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
