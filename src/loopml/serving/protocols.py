"""The routes of every workload with an online scorer, in three protocols.

- loopml's own: ``POST /v1/<w>/predict`` with ``{"rows": [...]}``, answering
  every column the scorer returns per row, plus its response-level fields.
- MLflow's scoring protocol: ``POST /v1/<w>/invocations`` (and
  ``POST /invocations`` for the first workload) with ``dataframe_split``,
  ``dataframe_records`` or ``instances``, as ``mlflow models serve``.
- The Open Inference Protocol v2 REST API (KServe, MLServer, Triton):
  ``/v2/health/*``, ``/v2/models/<w>``, ``/v2/models/<w>/ready`` and
  ``/v2/models/<w>/infer``: one input tensor per row field, one output tensor
  per scorer output (``[n]``, or ``[n, m]`` for a list per row).

All of them go through :class:`loopml.serving.scoring.Service`: the same
validation, scoring, canary, shadow and inference log. Only ``/v1`` lets a
scorer read the Feast online store; the MLflow and v2 protocols answer with
the model alone, as the model's own MLflow server would.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException
from pydantic import BaseModel, ConfigDict, Field, create_model

from loopml.sdk.capabilities import OnlineScorer, Output
from loopml.serving.scoring import Service, plain


class PredictResponse(BaseModel):
    """A ``/v1/<w>/predict`` answer; the workload may add response fields."""

    model_config = ConfigDict(extra="allow")

    model: str
    model_version: str
    predictions: list[dict[str, Any]] = Field(
        description="One object per requested row, in request order."
    )


class InvocationsRequest(BaseModel):
    """MLflow scoring payload: exactly one of the three forms."""

    dataframe_split: dict[str, Any] | None = None
    dataframe_records: list[dict[str, Any]] | None = None
    instances: list[dict[str, Any]] | None = None


class V2Tensor(BaseModel):
    """One named tensor of an OIP v2 request or response."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class V2InferRequest(BaseModel):
    """OIP v2 inference request: one tensor per input column."""

    id: str | None = None
    inputs: list[V2Tensor] = Field(min_length=1)


def _records(body: InvocationsRequest) -> tuple[list[Any], str]:
    given = {
        k: v
        for k, v in body.model_dump().items()
        if v is not None and k in ("dataframe_split", "dataframe_records", "instances")
    }
    if len(given) != 1:
        raise HTTPException(
            400,
            detail="give exactly one of dataframe_split, dataframe_records, instances",
        )
    key, value = next(iter(given.items()))
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


def input_datatype(annotation: Any) -> str:
    """The OIP datatype of a row field's type (``str | None`` -> ``BYTES``)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else str
    if typing.get_origin(annotation) is Literal:
        annotation = type(typing.get_args(annotation)[0])
    if annotation is bool:
        return "BOOL"
    if annotation is int:
        return "INT64"
    if annotation is float:
        return "FP64"
    return "BYTES"


def _tensor(output: Output, values: list[Any]) -> dict[str, Any]:
    """An output tensor: ``[n]``, or ``[n, m]`` for lists (short ones padded)."""
    if output.per_row is None:
        return {
            "name": output.name,
            "shape": [len(values)],
            "datatype": output.datatype,
            "data": values,
        }
    width = output.per_row or max((len(v or []) for v in values), default=0)
    rows = [list(v or [])[:width] for v in values]
    data = [x for row in rows for x in row + [None] * (width - len(row))]
    return {
        "name": output.name,
        "shape": [len(values), width],
        "datatype": output.datatype,
        "data": data,
    }


def v1_router(service: Service, name: str, scorer: OnlineScorer) -> APIRouter:
    """``/v1/<name>/predict`` and ``/v1/<name>/invocations``."""
    router = APIRouter(tags=[name])
    title = "".join(part.title() for part in name.split("_"))
    request = create_model(
        f"{title}PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        rows=(
            list[scorer.row],  # type: ignore[name-defined]
            Field(min_length=1, max_length=service.settings.serving.max_rows),
        ),
    )

    def predict(body: Any, background: BackgroundTasks) -> dict[str, Any]:
        loaded, scores, outputs = service.predict(
            name, body.rows, ("body", "rows"), background
        )
        extra = {k: plain(v) for k, v in scores.extra.items()}
        return {
            "model": name,
            "model_version": loaded.version,
            "predictions": outputs,
            **extra,
        }

    # The body's model is built here, so it cannot be written in the signature.
    predict.__annotations__["body"] = request
    router.add_api_route(
        f"/v1/{name}/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        summary=f"Score {name} rows",
        description=inspect.getdoc(type(scorer)) or "",
    )
    router.add_api_route(
        f"/v1/{name}/invocations",
        invocations_endpoint(service, name),
        methods=["POST"],
        summary=f"MLflow scoring protocol for {name}",
    )
    return router


def invocations_endpoint(service: Service, name: str) -> Any:
    """MLflow's ``/invocations``: one object of the scorer's outputs per row."""
    outputs = [o.name for o in service.scorers[name].outputs]

    def invocations(
        body: InvocationsRequest, background: BackgroundTasks
    ) -> dict[str, Any]:
        records, key = _records(body)
        rows = service.parse(name, records, ("body", key))
        # The model alone, as `mlflow models serve` would answer.
        _, _, answers = service.predict(
            name, rows, ("body", key), background, online=False
        )
        return {"predictions": [{o: a[o] for o in outputs} for a in answers]}

    invocations.__doc__ = f"MLflow scoring protocol for the {name} champion."
    return invocations


def v2_router(service: Service) -> APIRouter:
    """OIP v2 health and model routes for every workload with a scorer."""
    router = APIRouter(tags=["protocols"])

    @router.get("/v2/health/live")
    def v2_live() -> dict[str, bool]:
        """OIP v2 liveness."""
        return {"live": True}

    @router.get("/v2/health/ready")
    def v2_ready() -> dict[str, bool]:
        """OIP v2 readiness: some champion is loaded."""
        return {"ready": bool(service.store.versions())}

    for name in service.scorers:
        _v2_model_routes(router, service, name)

    hint = ", ".join(repr(n) for n in service.scorers) or "none"

    @router.get("/v2/models/{name}")
    def v2_unknown(name: str) -> dict[str, Any]:
        """OIP v2 metadata of a model this service does not serve: a 404."""
        raise HTTPException(404, detail=f"unknown model {name!r}; served: {hint}")

    @router.get("/v2/models/{name}/ready")
    def v2_unknown_ready(name: str) -> dict[str, Any]:
        """OIP v2 readiness of a model this service does not serve."""
        return {"name": name, "ready": False}

    @router.post("/v2/models/{name}/infer")
    def v2_unknown_infer(name: str, body: V2InferRequest) -> dict[str, Any]:
        """OIP v2 inference with a model this service does not serve: a 404."""
        raise HTTPException(404, detail=f"unknown model {name!r}; served: {hint}")

    return router


def _v2_model_routes(router: APIRouter, service: Service, name: str) -> None:
    scorer = service.scorers[name]
    fields = scorer.row.model_fields

    def metadata() -> dict[str, Any]:
        loaded = service.served(name)
        return {
            "name": name,
            "versions": [loaded.version],
            "platform": "mlflow-pyfunc",
            "inputs": [
                {"name": f, "datatype": input_datatype(info.annotation), "shape": [-1]}
                for f, info in fields.items()
            ],
            "outputs": [
                {
                    "name": o.name,
                    "datatype": o.datatype,
                    "shape": [-1] if o.per_row is None else [-1, o.per_row or -1],
                }
                for o in scorer.outputs
            ],
        }

    def ready() -> dict[str, Any]:
        return {"name": name, "ready": service.store.get(name) is not None}

    def infer(body: V2InferRequest, background: BackgroundTasks) -> dict[str, Any]:
        lengths = {len(t.data) for t in body.inputs}
        if len(lengths) != 1:
            raise HTTPException(400, detail="all input tensors need the same length")
        columns = {t.name: t.data for t in body.inputs}
        unknown = sorted(set(columns) - set(fields))
        if unknown:
            raise HTTPException(
                400,
                detail=f"unknown input tensors {unknown}; inputs: {list(fields)}",
            )
        n = lengths.pop()
        records = [{k: v[i] for k, v in columns.items()} for i in range(n)]
        rows = service.parse(name, records, ("body", "inputs"))
        loaded, _, answers = service.predict(
            name, rows, ("body", "inputs"), background, online=False
        )
        return {
            "model_name": name,
            "model_version": loaded.version,
            "id": body.id,
            "outputs": [
                _tensor(o, [a[o.name] for a in answers]) for o in scorer.outputs
            ],
        }

    router.add_api_route(
        f"/v2/models/{name}",
        metadata,
        methods=["GET"],
        summary=f"OIP v2 metadata of {name}",
    )
    router.add_api_route(
        f"/v2/models/{name}/ready",
        ready,
        methods=["GET"],
        summary=f"OIP v2 readiness of {name}",
    )
    router.add_api_route(
        f"/v2/models/{name}/infer",
        infer,
        methods=["POST"],
        summary=f"OIP v2 inference with {name}",
    )
