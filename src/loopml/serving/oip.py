"""The Open Inference Protocol v2 REST API (KServe, MLServer, Triton).

``GET /v2`` (server metadata), ``/v2/health/live`` and ``/v2/health/ready``,
and for every workload with an online scorer ``/v2/models/<w>`` (metadata),
``/v2/models/<w>/ready`` and ``/v2/models/<w>/infer``: one input tensor per
field of the scorer's row, one output tensor per output (``[n]``, or
``[n, m]`` for a list per row, short lists padded with null). Readiness is
said by the status code (unknown model 404, not loaded 503), as clients
read it. ``infer`` takes JSON with or without a ``Content-Type`` and the
binary tensor extension (:mod:`loopml.serving.tensors`), answering binary
outputs when asked, so ``tritonclient``'s defaults work. Rows are validated
like ``/v1``'s (a 422 names ``["body", "inputs", i, field]``) and scored with
the model alone, as for MLflow's protocol.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException
from pydantic import BaseModel, Field

from loopml import __version__
from loopml.sdk.capabilities import Output
from loopml.serving.scoring import Service
from loopml.serving.tensors import BinaryTensorRoute, binary_response

#: How the infer routes take bodies: JSON without a content type too, and
#: the binary tensor extension.
INFER_ROUTE: dict[str, Any] = {
    "methods": ["POST"],
    "route_class_override": BinaryTensorRoute,
    "strict_content_type": False,
}


class V2Tensor(BaseModel):
    """One named tensor of an OIP v2 request or response."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any] = Field(description="Row-major; nested lists are flattened.")
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(BaseModel):
    """An output the client asks for (``binary_data``: as raw bytes)."""

    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    """OIP v2 inference request: one tensor per input column."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor] = Field(min_length=1)
    outputs: list[V2RequestedOutput] | None = Field(
        None, description="The outputs to answer (default: all)."
    )


def _flat(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    return [x for v in data for x in (_flat(v) if isinstance(v, list) else [v])]


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

    @router.get("/v2")
    def v2_server() -> dict[str, Any]:
        """OIP v2 server metadata: name, version and protocol extensions."""
        return {
            "name": "loopml",
            "version": __version__,
            "extensions": ["binary_tensor_data"],
        }

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

    def v2_unknown_infer(name: str, body: V2InferRequest) -> dict[str, Any]:
        """OIP v2 inference with a model this service does not serve: a 404."""
        raise HTTPException(404, detail=f"unknown model {name!r}; served: {hint}")

    router.add_api_route("/v2/models/{name}/infer", v2_unknown_infer, **INFER_ROUTE)
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

    async def infer(body: V2InferRequest, background: BackgroundTasks) -> Any:
        columns = {t.name: _flat(t.data) for t in body.inputs}
        for tensor in body.inputs:  # the shape is part of the tensor
            held = math.prod(tensor.shape)
            if min(tensor.shape, default=0) < 0 or held != len(columns[tensor.name]):
                raise HTTPException(
                    400,
                    detail=f"input tensor {tensor.name!r}: shape {tensor.shape} "
                    f"does not hold its {len(columns[tensor.name])} value(s)",
                )
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise HTTPException(400, detail="all input tensors need the same length")
        wanted = _requested(body, [o.name for o in scorer.outputs])
        unknown = sorted(set(columns) - set(fields))
        if unknown:
            raise HTTPException(
                400,
                detail=f"unknown input tensors {unknown}; inputs: {list(fields)}",
            )
        n = lengths.pop()
        records = [{k: v[i] for k, v in columns.items()} for i in range(n)]
        loaded, _, answers = await service.parse_and_predict(
            name, records, ("body", "inputs"), background, online=False
        )
        answer = {
            "model_name": name,
            "model_version": loaded.version,
            "id": body.id,
            "outputs": [
                _tensor(o, [a[o.name] for a in answers])
                for o in scorer.outputs
                if o.name in wanted
            ],
        }
        binary = {n for n, as_bytes in wanted.items() if as_bytes}
        return binary_response(answer, binary) if binary else answer

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
        summary=f"OIP v2 inference with {name}",
        **INFER_ROUTE,
    )


def _requested(body: V2InferRequest, names: list[str]) -> dict[str, bool]:
    """The outputs to answer, each with whether it goes as raw bytes."""
    every = bool((body.parameters or {}).get("binary_data_output", False))
    if body.outputs is None:
        return dict.fromkeys(names, every)
    unknown = sorted({o.name for o in body.outputs} - set(names))
    if unknown:
        raise HTTPException(
            400, detail=f"unknown output tensors {unknown}; outputs: {names}"
        )
    return {
        o.name: bool((o.parameters or {}).get("binary_data", every))
        for o in body.outputs
    }
