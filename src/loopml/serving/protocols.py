"""loopml's own and MLflow's scoring routes for every workload with a scorer.

- ``POST /v1/<w>/predict`` with ``{"rows": [...]}``, answering every column
  the scorer returns per row, plus its response-level fields; the scorer may
  read the Feast online store.
- MLflow's scoring protocol: ``POST /v1/<w>/invocations`` (and
  ``POST /invocations`` for the first workload) with ``dataframe_split``,
  ``dataframe_records``, ``instances`` or ``inputs`` as JSON (with or without
  a ``Content-Type``), or a CSV body (``Content-Type: text/csv``), answered
  with the model alone, as ``mlflow models serve`` would; other content
  types are a 415. ``GET /ping`` and ``GET /health`` answer 200 once that
  workload's champion is loaded (503 before).

The Open Inference Protocol v2 routes are in :mod:`loopml.serving.oip`. All
go through :class:`loopml.serving.scoring.Service`: the same validation,
scoring, canary, shadow and inference log.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticSerializationError

from loopml.core import jsonbytes
from loopml.sdk.capabilities import OnlineScorer, Scores
from loopml.serving.bodies import INVOCATIONS_ROUTE, json_body_route
from loopml.serving.scoring import Service, plain

if TYPE_CHECKING:
    from loopml.serving.model_store import LoadedModel

#: The payload keys of MLflow's JSON scoring protocol.
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class PredictResponse(BaseModel):
    """A ``/v1/<w>/predict`` answer; the workload may add response fields."""

    model_config = ConfigDict(extra="allow")

    model: str
    model_version: str
    predictions: list[dict[str, Any]] = Field(
        description="One object per requested row, in request order."
    )


class InvocationsRequest(BaseModel):
    """MLflow scoring payload: exactly one of the four forms."""

    dataframe_split: dict[str, Any] | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    instances: list[dict[str, Any]] | None = None
    inputs: dict[str, list[Any]] | list[dict[str, Any]] | None = Field(
        None, description="Columns (name: values) or records."
    )
    params: dict[str, Any] | None = Field(
        None, description="Accepted for MLflow clients; the scorers take none."
    )


#: The fields of :class:`PredictResponse`; a response field may not take them.
RESERVED = frozenset(PredictResponse.model_fields)


def json_response(content: dict[str, Any]) -> Response | dict[str, Any]:
    """``content`` as the bytes FastAPI would send, without its per-row work.

    FastAPI validates a route's answer against its response model, in
    another thread for a sync route, then serializes it with pydantic-core
    in JSON mode (NaN and infinity as ``null``). ``content`` is already
    JSON-ready (:func:`~loopml.serving.scoring.per_row`), so one call makes
    the same bytes (:func:`loopml.core.jsonbytes.dumps`: orjson, or
    pydantic-core for what orjson is told to refuse). A value neither can
    serialize is handed back to FastAPI's own path, which answers as it
    always did.
    """
    try:
        body = jsonbytes.dumps(content)
    except PydanticSerializationError:
        return content
    return Response(body, media_type="application/json")


def _records(body: InvocationsRequest) -> tuple[list[Any], str]:
    given = {k: v for k in FORMATS if (v := getattr(body, k)) is not None}
    if len(given) != 1:
        raise HTTPException(400, detail=f"give exactly one of {', '.join(FORMATS)}")
    key, value = next(iter(given.items()))
    if isinstance(value, dict) and key == "inputs":
        lengths = {len(v) for v in value.values()}
        if len(lengths) != 1:
            raise HTTPException(400, detail="inputs: give columns of one length")
        n = lengths.pop()
        return [{c: v[i] for c, v in value.items()} for i in range(n)], key
    if key == "dataframe_split":
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(columns, list) or not isinstance(data, list):
            raise HTTPException(
                400, detail="dataframe_split needs 'columns' and 'data'"
            )
        if not all(isinstance(c, str) for c in columns) or not all(
            isinstance(row, list) for row in data
        ):
            raise HTTPException(
                400,
                detail="dataframe_split needs 'columns' (names) and 'data' (rows)",
            )
        return [dict(zip(columns, row, strict=False)) for row in data], key
    return list(value), key


def v1_request_model(service: Service, name: str) -> type[BaseModel]:
    """The body of ``POST /v1/<name>/predict``: ``{"rows": [...]}``."""
    title = "".join(part.title() for part in name.split("_"))
    row = service.scorers[name].row
    model: type[BaseModel] = create_model(
        f"{title}PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(
            list[row],  # type: ignore[valid-type]
            Field(min_length=1, max_length=service.settings.serving.max_rows),
        ),
    )
    return model


def v1_content(
    name: str, loaded: LoadedModel, scores: Scores, outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``/v1/<name>/predict`` answer: the rows' outputs and the scorer's extras."""
    extra = {k: plain(v) for k, v in scores.extra.items()}
    return {
        "model": name,
        "model_version": loaded.version,
        "predictions": outputs,
        **extra,
    }


def v1_router(
    service: Service,
    name: str,
    scorer: OnlineScorer,
    request: type[BaseModel] | None = None,
) -> APIRouter:
    """``/v1/<name>/predict`` (body: ``request``, by default
    :func:`v1_request_model`'s) and ``/v1/<name>/invocations``."""
    router = APIRouter(tags=[name])
    request = request or v1_request_model(service, name)

    async def predict(
        body: Any, background: BackgroundTasks
    ) -> dict[str, Any] | Response:
        loaded, scores, outputs = await service.predict_async(
            name, body.rows, ("body", "rows"), background
        )
        content = v1_content(name, loaded, scores, outputs)
        if RESERVED.isdisjoint(scores.extra):
            return json_response(content)
        return content  # PredictResponse says what is wrong (a 500)

    # The body's model is built here, so it cannot be written in the signature.
    predict.__annotations__["body"] = request
    router.add_api_route(
        f"/v1/{name}/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        route_class_override=json_body_route(request),
        summary=f"Score {name} rows",
        description=inspect.getdoc(type(scorer)) or "",
    )
    router.add_api_route(
        f"/v1/{name}/invocations",
        invocations_endpoint(service, name),
        summary=f"MLflow scoring protocol for {name}",
        **INVOCATIONS_ROUTE,
    )
    return router


def mlflow_router(service: Service, name: str) -> APIRouter:
    """``POST /invocations``, ``GET /ping`` and ``GET /health`` for ``name``."""
    router = APIRouter(tags=["protocols"])
    router.add_api_route(
        "/invocations",
        invocations_endpoint(service, name),
        summary=f"MLflow scoring protocol ({name})",
        **INVOCATIONS_ROUTE,
    )

    def ping() -> dict[str, str]:
        # As `mlflow models serve`: 200 once the model is loaded.
        if service.store.get(name) is None:
            raise HTTPException(503, detail=f"no {name} champion is loaded yet")
        return {"status": "ok"}

    for path in ("/ping", "/health"):
        router.add_api_route(
            path,
            ping,
            methods=["GET"],
            summary=f"MLflow health check: 200 once the {name} champion is loaded",
        )
    return router


def invocations_endpoint(service: Service, name: str) -> Any:
    """MLflow's ``/invocations``: one object of the scorer's outputs per row."""
    outputs = [o.name for o in service.scorers[name].outputs]

    async def invocations(
        body: InvocationsRequest, background: BackgroundTasks
    ) -> dict[str, Any]:
        records, key = _records(body)
        # The model alone, as `mlflow models serve` would answer.
        _, _, answers = await service.parse_and_predict(
            name, records, ("body", key), background, online=False
        )
        return {"predictions": [{o: a[o] for o in outputs} for a in answers]}

    invocations.__doc__ = f"MLflow scoring protocol for the {name} champion."
    return invocations
