"""``POST /v1/<w>/predict`` answered below FastAPI's routing, when nothing is unusual.

FastAPI's way to a route (matching the path against every route, the
request object, dependencies, the exit stack, exception wrappers) costs more
per request than scoring one row from memory (measured: the same minimal
app served twice the requests as a plain ASGI callable;
docs/benchmarks.md). :class:`PredictFastLane` sits innermost among the
service's middlewares (inside the body-size limit, the metrics and the rate
limit, which see the request as before) and answers a predict request
itself when all of these hold:

* the body is ``application/json`` and validates against the route's body
  model in one pydantic-core call;
* the scorer answers the rows from memory (``Service.in_memory``), and no
  shadow scoring is asked (it runs after the answer, as a background task);
* scoring raises nothing.

Anything else (a bad body, a cache miss, a 404 or 422 from the scorer) goes
to FastAPI with the same bytes, so every error and every slow path answers
exactly as the route does; the scorer raises before it logs, so a request
is never logged twice. The answer is the route's (``protocols.v1_content``),
in the same bytes and headers (a value neither orjson nor pydantic-core can
write goes through FastAPI's ``jsonable_encoder`` first, as the route's
answer would), and the request is counted in ``/metrics`` under the route's
template. The predictions histogram and the inference-log entry are done
once the answer is sent (``Service.predict``'s ``later``), so the client
does not wait for them (in process, on a slow host: 65-89 us of a one-row
request, 127-190 us of a 28-row one, whose whole was about 600 us).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopml.core import jsonbytes
from loopml.serving.protocols import RESERVED, v1_content
from loopml.serving.scoring import Service

LOC = ("body", "rows")
HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class Lane:
    """One workload's predict route: its body's validator and its route object."""

    workload: str
    body: TypeAdapter[Any]
    route: Any  # the APIRoute, for the metrics' route label


def lane(workload: str, model: type[BaseModel], route: Any) -> Lane:
    """A lane for ``workload``'s route, validating bodies with ``model``."""
    return Lane(workload, TypeAdapter(model), route)


class PredictFastLane:
    """Answer ``POST /v1/<w>/predict`` without FastAPI when it would answer alike."""

    def __init__(self, app: ASGIApp, service: Service, lanes: Mapping[str, Lane]):
        """Wrap ``app``; ``lanes`` (path -> lane) may be filled in later."""
        self.app = app
        self.service = service
        self.lanes = lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a predict request from memory, or hand it on unchanged."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        found = self.lanes.get(scope["path"])
        if found is None or not _json(scope):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        later: list[Callable[[], None]] = []
        try:
            answer = self._answer(found, bytes(body), later)
            if answer is None:
                await self.app(scope, _replay(bytes(body), receive), send)
                return
            scope["route"] = found.route  # the metrics label the route's template
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(len(answer)).encode()),
                        *HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer})
        finally:  # the answer is on its way: metrics and the log entry now
            for account in later:
                account()

    def _answer(
        self, found: Lane, body: bytes, later: list[Callable[[], None]]
    ) -> bytes | None:
        """The answer's bytes, or None for FastAPI to answer instead."""
        service = self.service
        try:
            rows = found.body.validate_json(body).rows
        except ValidationError:
            return None
        if service.settings.serving.shadow or not service.in_memory(
            found.workload, rows, True
        ):
            return None
        try:
            loaded, scores, outputs = service.predict(
                found.workload, rows, LOC, later=later
            )
        except Exception:  # raised before the log: FastAPI says it in its words
            return None
        if not RESERVED.isdisjoint(scores.extra):
            raise RuntimeError(
                f"the {found.workload} scorer's response fields "
                f"{sorted(RESERVED.intersection(scores.extra))} clash with "
                "the answer's own"
            )
        content = v1_content(found.workload, loaded, scores, outputs)
        try:
            return jsonbytes.dumps(content)
        except PydanticSerializationError:
            from fastapi.encoders import jsonable_encoder

            return to_json(jsonable_encoder(content), inf_nan_mode="null")


def _json(scope: Scope) -> bool:
    """Whether the request says its body is ``application/json``, exactly."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value == b"application/json")
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with ``body`` given again first (it was read already)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
