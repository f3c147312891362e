"""How the scoring routes read bodies beyond FastAPI's JSON.

- MLflow's content types (:class:`MlflowRoute`): JSON with or without a
  ``Content-Type``, ``text/csv`` (read by pandas into ``dataframe_split``, as
  ``mlflow models serve`` reads it), anything else a 415.
- A 422 whose input is bytes (a body that is not JSON) says what it was and
  never echoes bytes that are not UTF-8 (:func:`validation_error`; FastAPI's
  own handler failed on them with a 500).

The binary tensor extension of the Open Inference Protocol is in
:mod:`loopml.serving.tensors`.
"""

from __future__ import annotations

import email.message
import io
import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pandas as pd
from fastapi import HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.types import Message


def csv_as_json(body: bytes) -> bytes:
    """A CSV body as MLflow's ``dataframe_split`` (types inferred by pandas).

    Raises:
        HTTPException: 400 for a body that is not UTF-8 CSV.
    """
    try:
        frame = pd.read_csv(io.StringIO(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        text = str(error)
        detail = text.splitlines()[0][:200] if text else type(error).__name__
        raise HTTPException(400, detail=f"not a UTF-8 CSV table: {detail}") from None
    split = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return json.dumps({"dataframe_split": split}).encode()


class MlflowRoute(APIRoute):
    """A route that takes MLflow's content types: JSON (or none) and CSV."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, given a CSV body as JSON; a 415 for other types."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            given = request.headers.get("content-type")
            if given:
                message = email.message.Message()
                message["content-type"] = given
                kind = message.get_content_type()
                if kind == "text/csv":
                    body = csv_as_json(await request.body())
                    request = _as_json(request, body)
                elif not (kind == "application/json" or kind.endswith("+json")):
                    raise HTTPException(
                        415,
                        detail=f"content type {given[:80]!r}: send application/json "
                        "(or no content type) or text/csv",
                    )
            return await handler(request)

        return route


def json_body_route(model: type[BaseModel]) -> type[APIRoute]:
    """A route class whose JSON body ``model`` validates from the bytes, in one call.

    FastAPI parses a JSON body with ``json.loads`` and then validates the
    Python objects; per row of a request that is most of its body cost. For
    a body sent as ``application/json``, this route has pydantic-core
    validate the bytes (JSON mode) and hands FastAPI the model as the
    parsed body, which it takes as it is (pydantic does not revalidate an
    instance). A body that does not validate so takes FastAPI's own path
    unchanged, so every error answer is as before (a parity test compares
    both on a table of good and bad bodies).
    """
    adapter = TypeAdapter(model)

    class JsonBodyRoute(APIRoute):
        def get_route_handler(
            self,
        ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                if request.headers.get("content-type") == "application/json":
                    try:
                        parsed = adapter.validate_json(await request.body())
                    except ValidationError:
                        pass
                    else:
                        # Starlette's cache of request.json(), which FastAPI reads.
                        request._json = parsed
                return await handler(request)

            return route

    return JsonBodyRoute


def _as_json(request: Request, body: bytes) -> Request:
    """The request with ``body`` as its JSON body."""
    drop = (b"content-type", b"content-length")
    headers = [(k, v) for k, v in request.scope["headers"] if k not in drop]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({**request.scope, "headers": headers}, receive)


def _text(value: str) -> str:
    """``value`` as JSON can carry it: a lone surrogate (``"\\ud800"`` in
    the body) shown as its escape, since UTF-8 cannot encode it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(
            f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in value
        )
    return value


def _printable(value: Any) -> Any:
    """``value`` as JSON can show it: bytes made text (undecodable ones only
    counted), a NaN or an infinity as its name, a lone surrogate escaped."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": strict JSON has no such number
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value[:200]).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes, not UTF-8 text>"
        return text if len(value) <= 200 else f"{text}... ({len(value)} bytes)"
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """A 422 naming what was wrong; a body that is not text is never echoed."""
    assert isinstance(error, RequestValidationError)
    errors = [_printable(dict(e)) for e in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


#: How the MLflow routes take bodies.
INVOCATIONS_ROUTE: dict[str, Any] = {
    "methods": ["POST"],
    "route_class_override": MlflowRoute,
    "strict_content_type": False,
}
