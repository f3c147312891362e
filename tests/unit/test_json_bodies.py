"""``/v1`` bodies validated from their bytes answer exactly as FastAPI's own path.

:func:`loopml.serving.bodies.json_body_route` lets pydantic-core validate an
``application/json`` body in one call and falls back to FastAPI's
``json.loads`` + validation for anything it does not accept. Both routes
below serve the same endpoint and body model; every body in the table must
get the same status and the same answer from both (a 422 naming the same
fields with the same messages).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from pydantic import ConfigDict, Field, create_model

from loopml.serving.bodies import json_body_route, validation_error
from loopml.workloads.demand.serving import DemandRow
from loopml.workloads.recsys.serving import RecsysRow

ROW = {
    "store_id": "S01",
    "item_id": "I001",
    "date": "2026-01-06",
    "price": 3.25,
    "promo": 1,
    "holiday": 0,
}


def _app(row: type) -> FastAPI:
    body_model = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(list[row], Field(min_length=1, max_length=5)),  # type: ignore[valid-type]
    )

    def predict(body: Any, request: Request) -> dict[str, Any]:
        fast = isinstance(getattr(request, "_json", None), body_model)
        return {"rows": [r.model_dump(mode="json") for r in body.rows], "fast": fast}

    predict.__annotations__["body"] = body_model
    router = APIRouter()
    router.add_api_route("/fastapi", predict, methods=["POST"])
    router.add_api_route(
        "/bytes",
        predict,
        methods=["POST"],
        route_class_override=json_body_route(body_model),
    )
    app = FastAPI()
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, validation_error)
    return app


def _rows(*rows: dict[str, Any]) -> bytes:
    return json.dumps({"rows": list(rows)}).encode()


def _row(**change: Any) -> bytes:
    return _rows({**ROW, **change})


#: name -> raw body; each is sent as application/json and with other types.
DEMAND_BODIES: dict[str, bytes] = {
    "one row": _row(),
    "five rows": _rows(*[{**ROW, "item_id": f"I{i}"} for i in range(5)]),
    "defaults": _rows({k: ROW[k] for k in ("store_id", "item_id", "date")}),
    "price null": _row(price=None),
    "price as text": _row(price="3.5"),
    "price zero": _row(price=0),
    "price negative": _row(price=-1),
    "price NaN": _row().replace(b"3.25", b"NaN"),
    "price Infinity": _row().replace(b"3.25", b"Infinity"),
    "price 1e400": _row().replace(b"3.25", b"1e400"),
    "price 1e308": _row(price=1e308),
    "promo true": _row(promo=True),
    "promo 1.0": _row(promo=1.0),
    "promo 1.5": _row(promo=1.5),
    "promo text": _row(promo="1"),
    "promo 2": _row(promo=2),
    "promo huge": _row(promo=10**30),
    "store number": _row(store_id=5),
    "store empty": _row(store_id=""),
    "store too long": _row(store_id="S" * 65),
    "store unicode": _row(store_id="Sé☃"),
    "store NUL": _row(store_id="S\u0000"),
    "store lone surrogate": _row().replace(b'"S01"', b'"S\\ud800"'),
    "date short": _row(date="2026-1-6"),
    "date number": _row(date=20260106),
    "date midnight": _row(date="2026-01-06T00:00:00"),
    "date with time": _row(date="2026-01-06T01:00:00"),
    "date not a day": _row(date="2026-02-30"),
    "date null": _row(date=None),
    "extra field": _row(colour="red"),
    "field twice": _row().replace(
        b'"store_id": "S01"', b'"store_id": "A", "store_id": "B"'
    ),
    "rows twice": b'{"rows": [], "rows": ' + json.dumps([ROW]).encode() + b"}",
    "rows twice, bad last": b'{"rows": '
    + json.dumps([ROW]).encode()
    + b', "rows": []}',
    "no rows": _rows(),
    "too many rows": _rows(*[ROW] * 6),
    "rows missing": b"{}",
    "rows not a list": b'{"rows": {"a": 1}}',
    "row not an object": b'{"rows": ["S01"]}',
    "row missing fields": _rows({"store_id": "S01"}),
    "extra top-level": b'{"rows": ' + json.dumps([ROW]).encode() + b', "k": 1}',
    "null": b"null",
    "a number": b"1",
    "a list": b"[]",
    "empty": b"",
    "whitespace": b"  \n",
    "trailing whitespace": _row() + b" \n\t",
    "trailing garbage": _row() + b" x",
    "two documents": _row() + _row(),
    "truncated": _row()[:-3],
    "not JSON": b"store_id=S01",
    "UTF-8 BOM": b"\xef\xbb\xbf" + _row(),
    "UTF-16": _row().decode().encode("utf-16"),
    "not UTF-8": _row().replace(b"S01", b"S\xff1"),
    "escaped unicode": _row().replace(b'"S01"', b'"S\\u00e9"'),
    "deep nesting": b'{"rows": ' + b"[" * 300 + b"]" * 300 + b"}",
}

RECSYS_BODIES: dict[str, bytes] = {
    "one user": _rows({"user_id": "u1"}),
    "user number": _rows({"user_id": 1}),
    "user empty": _rows({"user_id": ""}),
    "extra field": _rows({"user_id": "u1", "k": 3}),
}

JSON_TYPES = ("application/json", "application/json; charset=utf-8")
CONTENT_TYPES = [
    "application/json",
    None,
    "application/json; charset=utf-8",
    "text/plain",
    "application/vnd.api+json",
]


def _answers(app: FastAPI, body: bytes, content_type: str | None) -> list[Any]:
    # Server errors answered, not raised: a 500 on one path must be one on both.
    client = TestClient(app, raise_server_exceptions=False)
    headers = {} if content_type is None else {"content-type": content_type}
    out = []
    for path in ("/fastapi", "/bytes"):
        response = client.post(path, content=body, headers=headers)
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        if isinstance(answer, dict):
            answer.pop("fast", None)
        out.append((response.status_code, answer))
    return out


@pytest.mark.parametrize("name", list(DEMAND_BODIES))
def test_demand_bodies_answer_as_fastapi_does(name: str) -> None:
    app = _app(DemandRow)
    for content_type in CONTENT_TYPES:
        old, new = _answers(app, DEMAND_BODIES[name], content_type)
        assert new == old, content_type


@pytest.mark.parametrize("name", list(RECSYS_BODIES))
def test_recsys_bodies_answer_as_fastapi_does(name: str) -> None:
    old, new = _answers(_app(RecsysRow), RECSYS_BODIES[name], "application/json")
    assert new == old


def test_a_valid_json_body_skips_fastapis_parse() -> None:
    client = TestClient(_app(DemandRow))
    headers = {"content-type": "application/json"}
    fast = client.post("/bytes", content=_row(), headers=headers).json()["fast"]
    slow = client.post("/fastapi", content=_row(), headers=headers).json()["fast"]
    assert fast and not slow
    bad = client.post("/bytes", content=_row(price=-1), headers=headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "rows", 0, "price"]


@pytest.mark.parametrize(
    ("name", "field", "shown"),
    [
        ("price NaN", "price", "nan"),
        ("store lone surrogate", "store_id", "S\\ud800"),
    ],
)
def test_a_value_json_cannot_echo_is_a_422_naming_it(
    name: str, field: str, shown: str
) -> None:
    """Strict JSON has no NaN and UTF-8 no lone surrogate: the 422 that
    echoes the input shows it by name or escape, never a 500."""
    client = TestClient(_app(DemandRow), raise_server_exceptions=False)
    for path in ("/fastapi", "/bytes"):
        for content_type in CONTENT_TYPES:
            headers = {} if content_type is None else {"content-type": content_type}
            response = client.post(path, content=DEMAND_BODIES[name], headers=headers)
            assert response.status_code == 422, (path, content_type, response.text)
            if content_type not in JSON_TYPES:
                continue  # not read as JSON: the whole body is the input
            detail = response.json()["detail"]
            (error,) = [e for e in detail if e["loc"][-1] == field]
            assert error["input"] == shown
