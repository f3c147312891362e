"""The Open Inference Protocol v2 REST API (KServe, MLServer, Triton).

``/v2/health/live`` and ``/v2/health/ready``, and for every workload with an
online scorer ``/v2/models/<w>`` (metadata), ``/v2/models/<w>/ready`` and
``/v2/models/<w>/infer``: one input tensor per field of the scorer's row, one
output tensor per output (``[n]``, or ``[n, m]`` for a list per row, short
lists padded with null). Rows are validated like ``/v1``'s (a 422 names
``["body", "inputs", i, field]``) and scored with the model alone, as for
MLflow's protocol.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException
from pydantic import BaseModel, Field

from loopml.sdk.capabilities import Output
from loopml.serving.scoring import Service


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


def v2_router(service: Service) -> APIRouter:
    """OIP v2 health and model routes for every workload with a scorer."""
    router = APIRouter(tags=["protocols"])

    @router.get("/v2/health/live")
    def v2_live() -> dict[str, bool]:
        """OIP v2 liveness."""
        return {"live": True}

    @router.get("/v2/health/ready")
    def v2_ready() -> dict[str, bool]:
        """OIP v2 readiness: 200 once some champion is loaded, else 503."""
        if not service.store.versions():
            raise HTTPException(503, detail="no champion is loaded yet")
        return {"ready": True}

    for name in service.scorers:
        _v2_model_routes(router, service, name)

    hint = ", ".join(repr(n) for n in service.scorers) or "none"

    @router.get("/v2/models/{name}")
    def v2_unknown(name: str) -> dict[str, Any]:
        """OIP v2 metadata of a model this service does not serve: a 404."""
        raise HTTPException(404, detail=f"unknown model {name!r}; served: {hint}")

    @router.get("/v2/models/{name}/ready")
    def v2_unknown_ready(name: str) -> dict[str, Any]:
        """OIP v2 readiness of a model this service does not serve: a 404."""
        raise HTTPException(404, detail=f"unknown model {name!r}; served: {hint}")

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
        # The protocol signals readiness by status code (clients read only it).
        if service.store.get(name) is None:
            raise HTTPException(503, detail=f"no {name} champion is loaded yet")
        return {"name": name, "ready": True}

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
